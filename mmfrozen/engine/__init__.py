"""mmfrozen.engine: modules registered in MMDetection's registries."""
