"""AuthService servicer: thin adapters between protos and Accounts."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from analytics_svc.auth.accounts import Accounts
from analytics_svc.conversions import api_key_to_proto, principal_to_proto, session_to_proto, user_to_proto
from mesh.auth.v1 import auth_service_pb2 as pb
from mesh.auth.v1 import auth_service_pb2_grpc as pb_grpc
from mesh_runtime.auth import current_principal
from mesh_runtime.client_address import client_address
from mesh_runtime.database import BlockingRunner
from mesh_runtime.pagination import PageRequest, text_key

_USERS_QUERY = "users"


class AuthServicer(pb_grpc.AuthServiceServicer):
    """Signs callers in and manages users and API keys."""

    def __init__(
        self, runner: BlockingRunner, accounts: Accounts, trusted_proxies: Sequence[str] = ("127.0.0.1/32", "::1/128")
    ) -> None:
        self.runner = runner
        self.accounts = accounts
        self.trusted_proxies = tuple(trusted_proxies)

    async def Login(self, request: pb.LoginRequest, context: grpc.aio.ServicerContext) -> pb.LoginResponse:
        address = client_address(context.peer(), context.invocation_metadata(), self.trusted_proxies)
        session = await self.runner.run(self.accounts.login, request.username, request.password, address)
        return pb.LoginResponse(session=session_to_proto(session))

    async def Refresh(self, request: pb.RefreshRequest, context: grpc.aio.ServicerContext) -> pb.RefreshResponse:
        session = await self.runner.run(self.accounts.refresh, request.refresh_token)
        return pb.RefreshResponse(session=session_to_proto(session))

    async def Logout(self, request: pb.LogoutRequest, context: grpc.aio.ServicerContext) -> pb.LogoutResponse:
        await self.runner.run(self.accounts.logout, request.refresh_token, current_principal())
        return pb.LogoutResponse()

    async def ExchangeApiKey(
        self, request: pb.ExchangeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExchangeApiKeyResponse:
        session = await self.runner.run(self.accounts.exchange_api_key, request.api_key)
        return pb.ExchangeApiKeyResponse(session=session_to_proto(session))

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.aio.ServicerContext) -> pb.WhoAmIResponse:
        return pb.WhoAmIResponse(principal=principal_to_proto(current_principal()))

    async def CreateUser(
        self, request: pb.CreateUserRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateUserResponse:
        user = request.user
        row = await self.runner.run(self.accounts.create_user, user.username, request.password, user.role)
        return pb.CreateUserResponse(user=user_to_proto(row))

    async def ListUsers(self, request: pb.ListUsersRequest, context: grpc.aio.ServicerContext) -> pb.ListUsersResponse:
        page = PageRequest.of(request.page_token, request.page_size, _USERS_QUERY, text_key)
        rows = await self.runner.run(self.accounts.list_users, page.fetch, page.after)
        rows, token = page.cut(rows, lambda r: [r.username])
        return pb.ListUsersResponse(users=[user_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateUserResponse:
        row = await self.runner.run(
            self.accounts.update_user,
            request.id,
            request.role if request.HasField("role") else None,
            request.disabled if request.HasField("disabled") else None,
            request.password if request.HasField("password") else None,
        )
        return pb.UpdateUserResponse(user=user_to_proto(row))

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateApiKeyResponse:
        row, secret = await self.runner.run(
            self.accounts.create_api_key, request.api_key.name, request.api_key.role
        )
        return pb.CreateApiKeyResponse(api_key=api_key_to_proto(row), secret=secret)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApiKeysResponse:
        rows = await self.runner.run(self.accounts.list_api_keys)
        return pb.ListApiKeysResponse(api_keys=[api_key_to_proto(r) for r in rows])

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevokeApiKeyResponse:
        row = await self.runner.run(self.accounts.revoke_api_key, request.id)
        return pb.RevokeApiKeyResponse(api_key=api_key_to_proto(row))
