"""The URL table of the auth API; the OpenAPI document is generated from the same table."""

from __future__ import annotations

from auth import handlers
from auth.api import (
    AuthResult,
    LoginRequest,
    MeResponse,
    ProfileResponse,
    RefreshRequest,
    RegisterRequest,
    SearchQuery,
    UpdateMeRequest,
    UpdateProfileRequest,
    UserPage,
    UserResponse,
)
from servicekit.openapi import Endpoint

OPENAPI_PATH = "/api/auth/openapi.json"
BODY_ERRORS = (400, 413, 415, 422)

ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/auth/register",
        handlers.register,
        "Create an account and sign in",
        request=RegisterRequest,
        responses={201: AuthResult},
        errors=(*BODY_ERRORS, 409, 429, 503),
        authenticated=False,
        tags=("auth",),
    ),
    Endpoint(
        "POST",
        "/api/auth/login",
        handlers.login,
        "Sign in with email or username and password",
        request=LoginRequest,
        responses={200: AuthResult},
        errors=(*BODY_ERRORS, 401, 429, 503),
        authenticated=False,
        tags=("auth",),
    ),
    Endpoint(
        "POST",
        "/api/auth/refresh",
        handlers.refresh,
        "Exchange a refresh token for a new token pair (the old one stops working)",
        request=RefreshRequest,
        responses={200: AuthResult},
        errors=(*BODY_ERRORS, 401),
        authenticated=False,
        tags=("auth",),
    ),
    Endpoint(
        "POST",
        "/api/auth/logout",
        handlers.logout,
        "End this session: its tokens stop working and its sockets disconnect",
        responses={204: None},
        errors=(401,),
        tags=("auth",),
    ),
    Endpoint(
        "GET",
        "/api/auth/me",
        handlers.me,
        "The signed-in account",
        responses={200: MeResponse},
        errors=(401,),
        tags=("auth",),
    ),
    Endpoint(
        "PATCH",
        "/api/users/me",
        handlers.update_me,
        "Change the display name",
        request=UpdateMeRequest,
        responses={200: MeResponse},
        errors=(*BODY_ERRORS, 401),
        tags=("users",),
    ),
    Endpoint(
        "PATCH",
        "/api/users/me/profile",
        handlers.update_profile,
        "Change the extended profile (bio, avatar, status, time zone)",
        request=UpdateProfileRequest,
        responses={200: ProfileResponse},
        errors=(*BODY_ERRORS, 401),
        tags=("users",),
    ),
    Endpoint(
        "GET",
        "/api/users/{user_id}",
        handlers.get_user,
        "A user's public fields",
        responses={200: UserResponse},
        errors=(401, 404),
        tags=("users",),
    ),
    Endpoint(
        "GET",
        "/api/users",
        handlers.search_users,
        "Users whose username or display name starts with q",
        query=SearchQuery,
        responses={200: UserPage},
        errors=(401, 422),
        tags=("users",),
    ),
)
