"""platform_adapters."""
