"""Omnihub's URLs plus the benchmark's bare baseline view."""

from django.urls import path

from bench.baseline import bare_view
from omnihub.urls import urlpatterns as omnihub_urlpatterns

urlpatterns = [*omnihub_urlpatterns, path("bench/bare", bare_view)]
