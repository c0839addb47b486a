"""The suggester that ships with lrgym, one folder per name (``default/``): a shipped
package of data only (see :mod:`lrgym.io.shipped`)."""
