def add_sweep_arguments(subparsers, service_factory):
    pass
