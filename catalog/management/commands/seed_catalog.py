"""Generate realistic demo data quickly: brands, a category tree per tenant and products that
reference them (a few brands carry most products, so a rename shows a real fan-out)."""

import random

from django.core.management.base import BaseCommand

from catalog.services import create_products_bulk

ADJECTIVES = ["Ergonomic", "Rustic", "Compact", "Premium", "Wireless", "Vintage", "Smart", "Heavy-Duty", "Organic",
              "Foldable", "Waterproof", "Handcrafted", "Lightweight", "Crème", "Stainless"]
NOUNS = ["Office Chair", "Desk Lamp", "Espresso Maker", "Backpack", "Headphones", "Water Bottle", "Running Shoes",
         "Cutting Board", "Sleeping Bag", "Keyboard", "Monitor Stand", "Tea Kettle", "Yoga Mat", "Bookshelf", "Jacket"]
BRANDS = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent"]
TENANTS = ["acme-eu", "acme-us", "globex"]
COUNTRIES = ["US", "DE", "FR", "JP", "GB"]
CATEGORIES = {"Home": {"Furniture": ["Chairs", "Desks", "Shelves"], "Kitchen": ["Cookware", "Appliances"]},
              "Outdoor": {"Camping": ["Tents", "Sleeping Bags"], "Sports": ["Running", "Yoga"]},
              "Electronics": {"Audio": ["Headphones", "Speakers"], "Computers": ["Keyboards", "Monitors"]}}
# Brand weights: the first two brands of each tenant carry about half of its products.
BRAND_WEIGHTS = [25, 20] + [55 / (len(BRANDS) - 2)] * (len(BRANDS) - 2)


def random_product(rng: random.Random, refs: dict | None = None) -> dict:
    """A product; with ``refs`` (tenant → (brand ids, leaf category ids)) it references them."""
    adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
    tenant = rng.choice(TENANTS)
    extra = {}
    if refs:
        brand_ids, category_ids = refs[tenant]
        extra = {"brand_id": rng.choices(brand_ids, weights=BRAND_WEIGHTS)[0], "category_id": rng.choice(category_ids)}
    return {
        **extra,
        "tenant_id": tenant,
        "title": f"{adjective} {noun}",
        "description": f"A {adjective.lower()} {noun.lower()} for everyday use. Model {rng.randint(100, 999)}.",
        "brand_name": rng.choice(BRANDS),
        "price_minor": rng.randint(199, 99_999),
        "available_qty": rng.randint(0, 500),
    }


class Command(BaseCommand):
    help = "Create N demo products through the outbox (so they flow to the index)."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=1000)
        parser.add_argument("--batch", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when products already exist.")

    def handle(self, *, products, batch, seed, if_empty, **options):
        from catalog.models import Product

        if if_empty and Product.objects.exists():
            self.stdout.write("catalog already has products; not seeding")
            return
        rng = random.Random(seed)
        refs = self._seed_references(rng)
        made = 0
        while made < products:
            n = min(batch, products - made)
            create_products_bulk([random_product(rng, refs) for _ in range(n)])
            made += n
        self.stdout.write(self.style.SUCCESS(f"created {made} products"))

    def _seed_references(self, rng) -> dict:
        """Brands and categories of each tenant (created once): tenant → (brand ids, leaf category ids)."""
        from catalog.brands import create_brand
        from catalog.categories import create_category
        from catalog.models import Brand, Category

        if not Brand.objects.exists():
            for tenant in TENANTS:
                for name in BRANDS:
                    create_brand(tenant_id=tenant, name=name, country=rng.choice(COUNTRIES))
            self.stdout.write(self.style.SUCCESS(f"created {len(TENANTS) * len(BRANDS)} brands"))
        if not Category.objects.exists():
            for tenant in TENANTS:
                for root, children in CATEGORIES.items():
                    top = create_category(tenant_id=tenant, name=root)
                    for child, leaves in children.items():
                        middle = create_category(tenant_id=tenant, name=child, parent=top)
                        for leaf in leaves:
                            create_category(tenant_id=tenant, name=leaf, parent=middle)
            self.stdout.write(self.style.SUCCESS(f"created {Category.objects.count()} categories"))
        refs = {}
        for tenant in TENANTS:
            brand_ids = list(Brand.objects.filter(tenant_id=tenant, name__in=BRANDS).order_by("pk")
                             .values_list("pk", flat=True))[:len(BRANDS)]
            leaves = list(Category.objects.filter(tenant_id=tenant, children__isnull=True).order_by("pk")
                          .values_list("pk", flat=True))
            if len(brand_ids) != len(BRANDS) or not leaves:
                return {}
            refs[tenant] = (brand_ids, leaves)
        return refs
