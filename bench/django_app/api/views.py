"""The protected hello view of simplejwt's tutorial: a class-based APIView
with a `get` method, so DRF answers `Allow: GET, HEAD, OPTIONS` and serves
HEAD like GET."""
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class HelloView(APIView):
    permission_classes = (IsAuthenticated,)

    def get(self, request):
        return Response({"message": "Hello, World!"})
