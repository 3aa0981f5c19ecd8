"""Releases: the vendor's TUF-signed release repository, its offline bundles, the files it
serves to clusters (`files`) and the release offered to each cluster (`offers`)."""
