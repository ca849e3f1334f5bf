"""indexing's REST API under ``/api/v1/``: one module per resource, its serializers beside it.

- ``urls.py``: the routes (``config/urls.py`` includes them)
- ``dead_letters.py``, ``dead_letter_serializers.py``: list, inspect, replay, discard dead letters
- ``documents.py``, ``document_serializers.py``: the document inspector and a document's re-index
- ``reconciliations.py``: reconciliation reports, starting a run, its throttle (serializers inline)

The top of indexing's layers (``.importlinter``): it uses the packages below it, none of them imports it.
"""
