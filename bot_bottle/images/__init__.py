"""Container images: the base-image bootstrap, the bundled Dockerfiles, content-digest builds."""
