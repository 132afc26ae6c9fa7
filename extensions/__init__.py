"""Stackable extensions (see lib/fugu/extensions.py for the mechanism). Each module defines EXTENSION, a subclass of
fugu.extensions.Extension; fugu.extensions.KNOWN lists them in start order."""
