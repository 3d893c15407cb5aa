// Nothing to import: this target only supplies the fuzz binary's entry point.
