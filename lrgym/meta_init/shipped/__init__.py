"""The meta-learned inits that ship with lrgym, one folder per name
(``meta-init-digits/``): a shipped package of data only (see :mod:`lrgym.io.shipped`)."""
