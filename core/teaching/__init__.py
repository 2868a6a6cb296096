"""For instructors: optimizer paths on 2-D surfaces (playground) and a live head-only optimizer race (classroom).

See README.md beside this file."""
