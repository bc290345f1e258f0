"""A shellwego client in Python (grpcio), on stubs generated from proto/ with buf.

Calls the read RPCs of every service over mTLS with a user certificate, and reads
the scheduler's event log with the server-streaming WatchEvents, then prints one
JSON object: for each call ("Service/Method") its gRPC status code name and the
response as protobuf JSON (or the server's message on an error). Read responses
never carry secret values.

Usage: shellwego_client.py CA CERT KEY SCHEDULER SECRETS REGISTRY NODE_AGENT APP SECRET IMAGE
where SCHEDULER ... NODE_AGENT are host:port, APP an app name, SECRET the name of
a secret of that app, IMAGE an image reference the registry holds.

Generate the stubs first (see ../README.md) and put them on PYTHONPATH.
"""

import json
import sys

import grpc
from google.protobuf import json_format

from shellwego.agent.v1 import agent_pb2, agent_pb2_grpc
from shellwego.registry.v1 import registry_pb2, registry_pb2_grpc
from shellwego.scheduler.v1 import apps_pb2, apps_pb2_grpc, nodes_pb2, nodes_pb2_grpc
from shellwego.secrets.v1 import secrets_pb2, secrets_pb2_grpc

TIMEOUT_SECONDS = 15


def read(path):
    with open(path, "rb") as f:
        return f.read()


def as_json(message):
    return json_format.MessageToDict(message, including_default_value_fields=True)


def call(fn):
    try:
        response = fn()
    except grpc.RpcError as error:
        return {"code": error.code().name, "details": error.details()}
    return {"code": "OK", "response": response}


def main(ca, cert, key, scheduler, secrets, registry, node_agent, app, secret, image):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )
    results = {}

    def record(name, fn):
        result = call(fn)
        if "response" in result:
            result["response"] = as_json(result["response"])
        results[name] = result

    with grpc.secure_channel(scheduler, credentials) as channel:
        apps = apps_pb2_grpc.AppServiceStub(channel)
        nodes = nodes_pb2_grpc.NodeServiceStub(channel)
        record("AppService/ListApps", lambda: apps.ListApps(apps_pb2.ListAppsRequest(), timeout=TIMEOUT_SECONDS))
        record("AppService/GetApp", lambda: apps.GetApp(apps_pb2.GetAppRequest(name=app), timeout=TIMEOUT_SECONDS))
        record(
            "AppService/ListInstances",
            lambda: apps.ListInstances(apps_pb2.ListInstancesRequest(app=app), timeout=TIMEOUT_SECONDS),
        )
        record("NodeService/ListNodes", lambda: nodes.ListNodes(nodes_pb2.ListNodesRequest(), timeout=TIMEOUT_SECONDS))
        # The stored events from the beginning; without follow the stream ends after them.
        try:
            stream = apps.WatchEvents(apps_pb2.WatchEventsRequest(after_cursor=0, follow=False), timeout=TIMEOUT_SECONDS)
            events = [as_json(item.event) for item in stream]
            results["AppService/WatchEvents"] = {"code": "OK", "events": events}
        except grpc.RpcError as error:
            results["AppService/WatchEvents"] = {"code": error.code().name, "details": error.details()}

    with grpc.secure_channel(secrets, credentials) as channel:
        stub = secrets_pb2_grpc.SecretsServiceStub(channel)
        scope = secrets_pb2.SecretScope(kind=secrets_pb2.SECRET_SCOPE_KIND_APP, app=app)
        record("SecretsService/ListSecrets", lambda: stub.ListSecrets(secrets_pb2.ListSecretsRequest(), timeout=TIMEOUT_SECONDS))
        record(
            "SecretsService/ListSecretVersions",
            lambda: stub.ListSecretVersions(
                secrets_pb2.ListSecretVersionsRequest(scope=scope, name=secret), timeout=TIMEOUT_SECONDS
            ),
        )
        record(
            "SecretsService/GetMasterKeyStatus",
            lambda: stub.GetMasterKeyStatus(secrets_pb2.GetMasterKeyStatusRequest(), timeout=TIMEOUT_SECONDS),
        )
        record(
            "SecretsService/ListAuditEvents",
            lambda: stub.ListAuditEvents(secrets_pb2.ListAuditEventsRequest(), timeout=TIMEOUT_SECONDS),
        )

    with grpc.secure_channel(registry, credentials) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        record("RegistryService/ListImages", lambda: stub.ListImages(registry_pb2.ListImagesRequest(), timeout=TIMEOUT_SECONDS))
        record(
            "RegistryService/ResolveImage",
            lambda: stub.ResolveImage(registry_pb2.ResolveImageRequest(reference=image), timeout=TIMEOUT_SECONDS),
        )

    with grpc.secure_channel(node_agent, credentials) as channel:
        stub = agent_pb2_grpc.NodeAgentServiceStub(channel)
        record(
            "NodeAgentService/GetNodeStatus",
            lambda: stub.GetNodeStatus(agent_pb2.GetNodeStatusRequest(), timeout=TIMEOUT_SECONDS),
        )

    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) != 11:
        sys.exit(__doc__)
    main(*sys.argv[1:])
