"""Products reference a brand and a category (a tree); products, brands and categories carry a
stamp from one database-wide sequence, the ground of the documents' versions.

The sequence starts above every per-entity version already used as an external version, so a
document rebuilt with the new versions always beats what the index holds from before."""

import django.db.models.deletion
from django.db import migrations, models

import catalog.models

SEQUENCE = catalog.models.CHANGE_SEQUENCE

CREATE_SEQUENCE = f"""
CREATE SEQUENCE IF NOT EXISTS {SEQUENCE};
SELECT setval('{SEQUENCE}', GREATEST(1,
    (SELECT COALESCE(MAX(version), 0) FROM catalog_product),
    (SELECT COALESCE(MAX(version), 0) FROM catalog_brand)));
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_product_bounds_and_write_permission")]

    operations = [
        migrations.RunSQL(CREATE_SEQUENCE, f"DROP SEQUENCE IF EXISTS {SEQUENCE}"),
        migrations.CreateModel(
            name="Category",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("tenant_id", models.CharField(db_index=True, max_length=64)),
                ("name", models.CharField(max_length=200)),
                ("change_stamp", models.BigIntegerField(db_default=catalog.models.NextStamp(), editable=False)),
                ("updated_at", models.DateTimeField(auto_now=True, db_index=True)),
                ("parent", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                             related_name="children", to="catalog.category")),
            ],
            options={"ordering": ["id"], "verbose_name_plural": "categories"},
        ),
        # Adding the column with a volatile default stamps every existing row, each with its own value.
        migrations.AddField(model_name="brand", name="change_stamp",
                            field=models.BigIntegerField(db_default=catalog.models.NextStamp(), editable=False)),
        migrations.AddField(model_name="product", name="change_stamp",
                            field=models.BigIntegerField(db_default=catalog.models.NextStamp(), editable=False)),
        migrations.AddField(model_name="product", name="brand",
                            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                                    related_name="products", to="catalog.brand")),
        migrations.AddField(model_name="product", name="category",
                            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                                    related_name="products", to="catalog.category")),
    ]
