"""Bound product descriptions (enforced by the API; the column stays text) and add the
permission that guards product writes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_brand")]

    operations = [
        migrations.AlterModelOptions(
            name="product",
            options={"ordering": ["id"],
                     "permissions": [("write_products", "Can create, change and delete products through the API")]},
        ),
        migrations.AlterField(model_name="product", name="description",
                              field=models.TextField(blank=True, max_length=10_000)),
    ]
