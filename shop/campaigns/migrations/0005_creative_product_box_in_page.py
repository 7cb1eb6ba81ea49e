from django.db import migrations, models
from django.db.models import F, Q

IN_PAGE = Q(x0__isnull=False, y0__isnull=False, x1__isnull=False, y1__isnull=False,
            x0__gte=0, y0__gte=0, x1__lte=1, y1__lte=1, x0__lt=F("x1"), y0__lt=F("y1"))
NO_BOX = Q(x0__isnull=True, y0__isnull=True, x1__isnull=True, y1__isnull=True)


def forget_boxes_outside_the_page(apps, schema_editor):
    """Positions that were not four fractions of the page (pixels typed in, edges swapped, one edge
    missing) were projected to meaningless boxes; they become "no position" before the constraint."""
    placements = apps.get_model("campaigns", "AdCreativeProduct").objects
    placements.exclude(IN_PAGE | NO_BOX).update(x0=None, y0=None, x1=None, y1=None)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0004_campaign_updated_at'),
    ]

    operations = [
        migrations.AlterField(
            model_name='adcreativeproduct',
            name='x0',
            field=models.FloatField(blank=True, help_text="left edge, a fraction of the artwork's width (0-1)", null=True),
        ),
        migrations.AlterField(
            model_name='adcreativeproduct',
            name='x1',
            field=models.FloatField(blank=True, help_text='right edge (0-1, right of the left edge)', null=True),
        ),
        migrations.AlterField(
            model_name='adcreativeproduct',
            name='y0',
            field=models.FloatField(blank=True, help_text='top edge, a fraction of its height (0-1)', null=True),
        ),
        migrations.AlterField(
            model_name='adcreativeproduct',
            name='y1',
            field=models.FloatField(blank=True, help_text='bottom edge (0-1, below the top edge)', null=True),
        ),
        migrations.RunPython(forget_boxes_outside_the_page, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='adcreativeproduct',
            constraint=models.CheckConstraint(
                condition=NO_BOX | IN_PAGE,
                name='creative_product_box_in_page',
                violation_error_message=(
                    "A product's position is four fractions of the artwork (0-1, left < right, top < bottom), or none."
                ),
            ),
        ),
    ]
