# The two commands of the README: `make run` and `make test`. Both create the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run test bench-embed bench-detect db-stop clean

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(PY) manage.py rundev

test: install
	$(PY) -m pytest

bench-embed: install
	$(PY) bench/embed.py

bench-detect: install
	$(PY) bench/detect.py

# The embedded PostgreSQL keeps running after one-off manage.py commands; this stops it.
db-stop: install
	$(PY) -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings'); django.setup(); \
	from django.conf import settings; from shop import embedded_db; embedded_db.stop(settings.EMBEDDED_PGDATA)"

clean: db-stop
	rm -rf var
