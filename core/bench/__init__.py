"""Where training time goes on this machine: interleaved timing windows and paired ratios.

``suites`` runs the benches, ``report`` prints them; see README.md beside this file."""
