# Image for the web, worker and beat processes of docker-compose.yml.
FROM python:3.11-slim
# Every process of the image, manage.py included, runs the production settings (manage.py alone
# defaults to config.settings_local, for a checkout).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic needs settings only; the real key and hosts come from the environment at run time.
RUN DJANGO_DEBUG=false DJANGO_ALLOWED_HOSTS=build DJANGO_SECRET_KEY=collectstatic-only-$(head -c 48 /dev/urandom | base64 | tr -d '/+=') \
    python manage.py collectstatic --noinput
EXPOSE 8000
# Threaded workers (gunicorn.conf.py): read-your-writes waits never take every thread.
CMD ["gunicorn", "config.wsgi", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
