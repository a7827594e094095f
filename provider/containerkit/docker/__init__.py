"""Docker renderer: :func:`containerkit.docker.run_settings.render_docker` (spec -> docker-py settings)."""
