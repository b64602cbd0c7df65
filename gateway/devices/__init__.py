"""Device state: what each configured device is doing now (normal, alarm, trouble, offline)."""
