"""The seed every split, initialisation and shuffle of the zoo defaults to (`zoo.DEFAULT_SEED`), in a module of its
own so that no module of the package imports the package's facade (`zoo/__init__.py`)."""

DEFAULT_SEED = 1337
