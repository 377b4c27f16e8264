"""Building blocks: plain nn.Modules with no model logic, no I/O."""
