"""mmfrozen.evaluation: modules registered in MMDetection's registries."""
