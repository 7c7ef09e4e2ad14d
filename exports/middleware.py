"""Makes sure the process serving a request runs its export supervisor (any WSGI server)."""

from . import pool


def export_supervisor_middleware(get_response):
    def middleware(request):
        pool.ensure_started()
        return get_response(request)

    return middleware
