"""DepMap releases: file layout, streaming the LFC matrix, the importer that turns a release into a screen table."""
