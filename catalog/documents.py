"""The "products" blueprint's document builder."""

from indexing.contracts import Event

# Payload keys whose index field has another name.
RENAMED = {"brand_name": "brand"}


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


def product_event(product) -> Event:
    """A product row as the upsert event that would have produced its current state."""
    from indexing.contracts import event_type_for

    from .services import AGGREGATE_TYPE, payload_of

    return Event(
        event_id="",
        event_type=event_type_for(AGGREGATE_TYPE, False),
        entity_id=str(product.pk),
        tenant_id=product.tenant_id,
        version=product.version,
        timestamp=product.updated_at,
        payload=payload_of(product),
    )
