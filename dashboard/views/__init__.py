"""Pages: one short script each (they import only services, charts and ui); a page's sections in a package."""
