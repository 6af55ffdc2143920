"""The estate's configuration: catalog, policy, request settings, keys and paths, loaded and checked."""
