from django.db import migrations, models

from shop.core.pgvector import create_vector_extension


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.RunPython(create_vector_extension, migrations.RunPython.noop, elidable=False),
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hostname", models.CharField(max_length=255)),
                ("queue", models.CharField(max_length=32)),
                ("seen_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["queue", "hostname"],
                "constraints": [models.UniqueConstraint(fields=("hostname", "queue"), name="uniq_worker_queue")],
            },
        ),
    ]
