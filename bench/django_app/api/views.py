"""The protected hello view of simplejwt's tutorial."""
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def hello(request):
    return Response({"message": "Hello, World!"})
