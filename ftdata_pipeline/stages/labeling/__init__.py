"""The labeled stage's parts: agreement, annotation imports, review queue, preference pairs, rules."""
