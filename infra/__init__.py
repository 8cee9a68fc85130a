"""The Pulumi program's building blocks: typed stack settings and the site's components."""
