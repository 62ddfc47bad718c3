"""The shipped model cards and weights, installed as the package data ``actionpipe.models``
(setup.cfg maps this folder to that package; :data:`actionpipe.cards.SHIPPED_MODELS`)."""
