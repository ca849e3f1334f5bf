"""The "products" blueprint's document builder."""

from indexing.contracts import Event
from indexing.documents import register_builder

# Payload keys whose index field has another name.
RENAMED = {"brand_name": "brand"}


@register_builder("products")
def build_product(event: Event) -> dict:
    document = {RENAMED.get(key, key): value for key, value in event.payload.items()}
    # Payload fields the mapping does not know are kept here on purpose: the
    # pipeline drops and reports them, so a new column is seen, not silently lost.
    document.update(
        id=event.entity_id,
        tenant_id=event.tenant_id,
        version=event.version,
        updated_at=event.timestamp.isoformat(),
        deleted=False,
    )
    return document
