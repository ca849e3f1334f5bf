"""Brands and categories through the API: create, update, list, delete (refused while products
use them), strictly validated, writes behind ``catalog.write_products``."""

import pytest

from backfills.models import Backfill
from catalog import services
from catalog.models import Brand, Category

pytestmark = pytest.mark.django_db


def test_brands_create_rename_list_and_delete_only_when_unused(operator_api):
    created = operator_api.post("/api/v1/catalog/brands/", {"tenant_id": "t1", "name": "Acme", "country": "DE"},
                                format="json")
    assert created.status_code == 201, created.content
    bid = created.json()["id"]
    renamed = operator_api.patch(f"/api/v1/catalog/brands/{bid}/", {"name": "Acme Two"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Acme Two"
    listed = operator_api.get("/api/v1/catalog/brands/?tenant_id=t1").json()
    assert [b["name"] for b in listed.get("results", listed) if isinstance(b, dict)] == ["Acme Two"]
    product = operator_api.post("/api/v1/catalog/products/", {"tenant_id": "t1", "title": "Desk", "price_minor": 1,
                                                             "available_qty": 1, "brand": bid}, format="json")
    assert product.status_code == 201 and product.json()["brand"] == bid
    refused = operator_api.delete(f"/api/v1/catalog/brands/{bid}/")
    assert refused.status_code == 400 and "used by 1 products" in refused.json()["detail"]
    services.delete_product(product.json()["id"])
    assert operator_api.delete(f"/api/v1/catalog/brands/{bid}/").status_code == 204
    assert not Brand.objects.exists()


@pytest.mark.parametrize("kind", ["brands", "categories"])
def test_a_brand_or_category_stays_in_the_tenant_it_was_created_in(operator_api, kind):
    made = operator_api.post(f"/api/v1/catalog/{kind}/", {"tenant_id": "acme", "name": "A"}, format="json").json()
    url = f"/api/v1/catalog/{kind}/{made['id']}/"
    moved = operator_api.patch(url, {"tenant_id": "acme-eu"}, format="json")
    assert moved.status_code == 400, moved.content
    assert list(moved.json()) == ["tenant_id"] and "fixed at creation" in moved.json()["tenant_id"][0]
    # A client sending back the tenant it read changes nothing else than what it asks for.
    same = operator_api.patch(url, {"tenant_id": "acme", "name": "B"}, format="json")
    assert same.status_code == 200 and same.json()["tenant_id"] == "acme" and same.json()["name"] == "B"
    model = Brand if kind == "brands" else Category
    assert model.objects.get(pk=made["id"]).tenant_id == "acme"


def test_the_schema_says_a_tenant_is_not_written_by_an_update(operator_api):
    components = operator_api.get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in ("PatchedBrandUpdate", "PatchedCategoryUpdate"):
        schema = components.get(f"{name}Request", components.get(name))
        tenant = schema["properties"].get("tenant_id")
        assert tenant is None or tenant.get("readOnly"), (name, tenant)


def test_categories_nest_move_and_refuse_cycles_and_deletes_in_use(operator_api):
    def post(**body):
        return operator_api.post("/api/v1/catalog/categories/", {"tenant_id": "t1", **body}, format="json")

    home = post(name="Home").json()["id"]
    chairs = post(name="Chairs", parent=home).json()
    assert chairs["path"] == ["Home", "Chairs"]
    garden = post(name="Garden").json()["id"]
    moved = operator_api.patch(f"/api/v1/catalog/categories/{chairs['id']}/", {"parent": garden}, format="json")
    assert moved.status_code == 200 and moved.json()["path"] == ["Garden", "Chairs"]
    cycle = operator_api.patch(f"/api/v1/catalog/categories/{garden}/", {"parent": chairs["id"]}, format="json")
    assert cycle.status_code == 400 and "descendants" in cycle.json()["parent"][0]
    assert operator_api.delete(f"/api/v1/catalog/categories/{garden}/").status_code == 400  # has a child
    assert operator_api.delete(f"/api/v1/catalog/categories/{home}/").status_code == 204
    assert Category.objects.count() == 2


@pytest.mark.parametrize("body", [
    {"tenant_id": "t1", "name": 5},
    {"tenant_id": "t1", "name": ""},
    {"tenant_id": "t1", "name": "x" * 201},
    {"tenant_id": "t1", "name": "a\x00b"},
    {"tenant_id": "t1", "name": "A", "parent": "1"},
    {"tenant_id": "t1", "name": "A", "parent": True},
    {"tenant_id": "t1", "name": "A", "parent": 2**63},
    {"tenant_id": "t1", "name": "A", "parent": 999999},
])
def test_category_input_is_strict(operator_api, body):
    answer = operator_api.post("/api/v1/catalog/categories/", body, format="json")
    assert answer.status_code == 400, answer.content


def test_product_references_are_strict_ids(operator_api):
    base = {"tenant_id": "t1", "title": "Desk", "price_minor": 1, "available_qty": 1}
    for bad in ("1", True, 2**63, 12345):
        assert operator_api.post("/api/v1/catalog/products/", {**base, "brand": bad}, format="json").status_code == 400


def test_writes_need_the_catalog_permission(django_user_model, client):
    client.force_login(django_user_model.objects.create_user("reader", password="x"))
    assert client.get("/api/v1/catalog/brands/").status_code == 200
    assert client.post("/api/v1/catalog/brands/", {"tenant_id": "t1", "name": "A"},
                       content_type="application/json").status_code == 403
    assert not Backfill.objects.exists()


def test_a_product_shows_only_its_own_tenants_brand_and_category(operator_api):
    from catalog import brands, categories

    ours, theirs = brands.create_brand(tenant_id="t1", name="Ours"), brands.create_brand(tenant_id="t2", name="Theirs")
    shelf, alien = (categories.create_category(tenant_id="t1", name="Shelf"),
                    categories.create_category(tenant_id="t2", name="Alien"))
    base = {"tenant_id": "t1", "title": "Desk", "price_minor": 1, "available_qty": 1}
    refused = operator_api.post("/api/v1/catalog/products/", {**base, "brand": theirs.pk, "category": alien.pk},
                                format="json")
    assert refused.status_code == 400
    assert set(refused.json()) == {"brand", "category"} and "tenant 't2'" in refused.json()["brand"][0]
    made = operator_api.post("/api/v1/catalog/products/", {**base, "brand": ours.pk, "category": shelf.pk}, format="json")
    assert made.status_code == 201, made.content
    pid = made.json()["id"]
    # Moving the product to another tenant would leave it showing this tenant's brand and category.
    moved = operator_api.patch(f"/api/v1/catalog/products/{pid}/", {"tenant_id": "t2"}, format="json")
    assert moved.status_code == 400 and set(moved.json()) == {"brand", "category"}
    swapped = operator_api.patch(f"/api/v1/catalog/products/{pid}/", {"brand": theirs.pk}, format="json")
    assert swapped.status_code == 400 and list(swapped.json()) == ["brand"]
    # The service refuses on its own, whoever calls it.
    with pytest.raises(services.ForeignTenant, match="another tenant"):
        services.update_product(pid, category_id=alien.pk)
    with pytest.raises(services.ForeignTenant):
        services.create_products_bulk([{**base, "brand_id": theirs.pk}])
    assert services.Product.objects.get(pk=pid).brand_id == ours.pk
    assert services.update_product(pid, tenant_id="t2", brand_id=theirs.pk, category_id=alien.pk).tenant_id == "t2"
