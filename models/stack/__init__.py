"""Raw stacks of a static scene: noise classification, registration and merging."""
