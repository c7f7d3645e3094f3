"""mmfrozen.models: modules registered in MMDetection's registries."""
