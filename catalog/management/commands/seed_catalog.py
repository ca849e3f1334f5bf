"""Generate realistic demo products quickly, and the demo brands, each with its outbox event."""

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


def random_product(rng: random.Random) -> dict:
    adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
    return {
        "tenant_id": rng.choice(TENANTS),
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
        made = 0
        while made < products:
            n = min(batch, products - made)
            create_products_bulk([random_product(rng) for _ in range(n)])
            made += n
        self.stdout.write(self.style.SUCCESS(f"created {made} products"))
        self._seed_brands(rng)

    def _seed_brands(self, rng):
        from catalog.brands import create_brand
        from catalog.models import Brand

        if Brand.objects.exists():
            return
        for tenant in TENANTS:
            for name in BRANDS:
                create_brand(tenant_id=tenant, name=name, country=rng.choice(COUNTRIES))
        self.stdout.write(self.style.SUCCESS(f"created {len(TENANTS) * len(BRANDS)} brands"))
