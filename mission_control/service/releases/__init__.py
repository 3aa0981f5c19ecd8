"""Releases: the vendor's TUF-signed release repository and its offline bundles."""
