"""Alert channels: what an alert says (`payload`), and the two ways it goes out (`email`, `webhook`)."""
