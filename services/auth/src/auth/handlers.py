"""HTTP: decode the request, call the service, encode the answer. No SQL, no rules."""

from __future__ import annotations

from aiohttp import web

from auth.account_service import AccountService
from auth.api import (
    ChangePasswordRequest,
    DeleteAccountRequest,
    LoginRequest,
    MeResponse,
    ProfileResponse,
    RefreshRequest,
    RegisterRequest,
    SearchQuery,
    UpdateMeRequest,
    UpdateProfileRequest,
    UserResponse,
)
from auth.profile_service import ProfileService
from auth.service import AuthService, ClientInfo
from servicekit.http_app import json_response
from servicekit.request_body import path_id, read_json, read_query
from servicekit.tokens import authenticate, caller_token

AUTH_SERVICE = web.AppKey("auth_service", AuthService)
ACCOUNT_SERVICE = web.AppKey("account_service", AccountService)
PROFILE_SERVICE = web.AppKey("profile_service", ProfileService)


def client_info(request: web.Request) -> ClientInfo:
    # nginx appends the peer it saw; the right-most entry is the only one no client can forge.
    forwarded = request.headers.get("X-Forwarded-For", "")
    ip = forwarded.rsplit(",", 1)[-1].strip() if forwarded else request.remote
    return ClientInfo(ip=ip, user_agent=request.headers.get("User-Agent"))


async def register(request: web.Request) -> web.Response:
    body = await read_json(request, RegisterRequest)
    result = await request.app[AUTH_SERVICE].register(body, client_info(request))
    return json_response(result, status=201)


async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginRequest)
    return json_response(await request.app[AUTH_SERVICE].login(body, client_info(request)))


async def refresh(request: web.Request) -> web.Response:
    body = await read_json(request, RefreshRequest)
    service = request.app[AUTH_SERVICE]
    return json_response(await service.refresh(body.refresh_token, client_info(request)))


async def logout(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    await request.app[AUTH_SERVICE].logout(claims)
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    return json_response(MeResponse(user=await request.app[AUTH_SERVICE].me(claims.user_id)))


async def update_me(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    body = await read_json(request, UpdateMeRequest)
    user = await request.app[AUTH_SERVICE].update_me(claims.user_id, body)
    return json_response(MeResponse(user=user))


async def delete_me(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    body = await read_json(request, DeleteAccountRequest)
    await request.app[ACCOUNT_SERVICE].delete_account(claims, body, client_info(request).ip)
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    body = await read_json(request, ChangePasswordRequest)
    await request.app[ACCOUNT_SERVICE].change_password(claims, body, client_info(request).ip)
    return web.Response(status=204)


async def list_sessions(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    return json_response(await request.app[ACCOUNT_SERVICE].sessions(claims))


async def sign_out_session(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    session_id = path_id(request, "session_id", "No such session")
    await request.app[ACCOUNT_SERVICE].sign_out(claims, session_id)
    return web.Response(status=204)


async def update_profile(request: web.Request) -> web.Response:
    claims = await authenticate(request)
    body = await read_json(request, UpdateProfileRequest)
    profile = await request.app[PROFILE_SERVICE].update(claims.user_id, body, caller_token(request))
    return json_response(ProfileResponse(profile=profile))


async def get_user(request: web.Request) -> web.Response:
    await authenticate(request)
    user_id = path_id(request, "user_id", "No such user")
    return json_response(UserResponse(user=await request.app[AUTH_SERVICE].public_user(user_id)))


async def search_users(request: web.Request) -> web.Response:
    await authenticate(request)
    query = read_query(request.query, SearchQuery)
    return json_response(await request.app[AUTH_SERVICE].search(query))
