// A shellwego client in C++ (Debian's grpc++), on stubs generated from proto/ with buf.
//
// Calls the read RPCs of every service over mTLS with a user certificate, and reads the
// scheduler's event log with the server-streaming WatchEvents, then prints one JSON object:
// for each call ("Service/Method") its gRPC status code and the response as protobuf JSON (or
// the server's message on an error). Read responses never carry secret values.
//
// Usage: shellwego_client CA CERT KEY SCHEDULER SECRETS REGISTRY NODE_AGENT APP SECRET IMAGE
// (the same arguments as ../python/shellwego_client.py). Build: see ../README.md.
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "shellwego/agent/v1/agent.grpc.pb.h"
#include "shellwego/registry/v1/registry.grpc.pb.h"
#include "shellwego/scheduler/v1/apps.grpc.pb.h"
#include "shellwego/scheduler/v1/nodes.grpc.pb.h"
#include "shellwego/secrets/v1/secrets.grpc.pb.h"

namespace {

constexpr int kTimeoutSeconds = 15;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "null";
  return json;
}

// The gRPC code's canonical name, as Python's grpc.StatusCode names it.
std::string CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                       "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                       "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index <= 16 ? kNames[index] : std::to_string(index);
}

std::unique_ptr<grpc::ClientContext> Deadline() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(kTimeoutSeconds));
  return context;
}

std::string Result(const grpc::Status& status, const std::string& body_key, const std::string& body) {
  if (!status.ok()) return "{\"code\":" + JsonString(CodeName(status.error_code())) + ",\"details\":" + JsonString(status.error_message()) + "}";
  return "{\"code\":\"OK\",\"" + body_key + "\":" + body + "}";
}

template <typename Stub, typename Request, typename Response>
std::string Unary(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*), const Request& request) {
  Response response;
  auto context = Deadline();
  const grpc::Status status = (stub.*method)(context.get(), request, &response);
  return Result(status, "response", ToJson(response));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 11) {
    std::cerr << "usage: shellwego_client CA CERT KEY SCHEDULER SECRETS REGISTRY NODE_AGENT APP SECRET IMAGE\n";
    return 2;
  }
  const std::string app = argv[8], secret = argv[9], image = argv[10];
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFile(argv[1]);
  tls.pem_cert_chain = ReadFile(argv[2]);
  tls.pem_private_key = ReadFile(argv[3]);
  const auto credentials = grpc::SslCredentials(tls);
  std::map<std::string, std::string> results;

  {
    const auto channel = grpc::CreateChannel(argv[4], credentials);
    auto apps = shellwego::scheduler::v1::AppService::NewStub(channel);
    auto nodes = shellwego::scheduler::v1::NodeService::NewStub(channel);
    results["AppService/ListApps"] = Unary(*apps, &shellwego::scheduler::v1::AppService::Stub::ListApps, shellwego::scheduler::v1::ListAppsRequest());
    shellwego::scheduler::v1::GetAppRequest get_app;
    get_app.set_name(app);
    results["AppService/GetApp"] = Unary(*apps, &shellwego::scheduler::v1::AppService::Stub::GetApp, get_app);
    shellwego::scheduler::v1::ListInstancesRequest list_instances;
    list_instances.set_app(app);
    results["AppService/ListInstances"] = Unary(*apps, &shellwego::scheduler::v1::AppService::Stub::ListInstances, list_instances);
    results["NodeService/ListNodes"] = Unary(*nodes, &shellwego::scheduler::v1::NodeService::Stub::ListNodes, shellwego::scheduler::v1::ListNodesRequest());

    // The stored events from the beginning; without follow the stream ends after them.
    shellwego::scheduler::v1::WatchEventsRequest watch;
    watch.set_after_cursor(0);
    watch.set_follow(false);
    auto context = Deadline();
    auto reader = apps->WatchEvents(context.get(), watch);
    shellwego::scheduler::v1::WatchEventsResponse item;
    std::string events = "[";
    for (bool first = true; reader->Read(&item); first = false) events += (first ? "" : ",") + ToJson(item.event());
    events += "]";
    results["AppService/WatchEvents"] = Result(reader->Finish(), "events", events);
  }
  {
    auto stub = shellwego::secrets::v1::SecretsService::NewStub(grpc::CreateChannel(argv[5], credentials));
    using Secrets = shellwego::secrets::v1::SecretsService::Stub;
    results["SecretsService/ListSecrets"] = Unary(*stub, &Secrets::ListSecrets, shellwego::secrets::v1::ListSecretsRequest());
    shellwego::secrets::v1::ListSecretVersionsRequest versions;
    versions.mutable_scope()->set_kind(shellwego::secrets::v1::SECRET_SCOPE_KIND_APP);
    versions.mutable_scope()->set_app(app);
    versions.set_name(secret);
    results["SecretsService/ListSecretVersions"] = Unary(*stub, &Secrets::ListSecretVersions, versions);
    results["SecretsService/GetMasterKeyStatus"] = Unary(*stub, &Secrets::GetMasterKeyStatus, shellwego::secrets::v1::GetMasterKeyStatusRequest());
    results["SecretsService/ListAuditEvents"] = Unary(*stub, &Secrets::ListAuditEvents, shellwego::secrets::v1::ListAuditEventsRequest());
  }
  {
    auto stub = shellwego::registry::v1::RegistryService::NewStub(grpc::CreateChannel(argv[6], credentials));
    using Registry = shellwego::registry::v1::RegistryService::Stub;
    results["RegistryService/ListImages"] = Unary(*stub, &Registry::ListImages, shellwego::registry::v1::ListImagesRequest());
    shellwego::registry::v1::ResolveImageRequest resolve;
    resolve.set_reference(image);
    results["RegistryService/ResolveImage"] = Unary(*stub, &Registry::ResolveImage, resolve);
  }
  {
    auto stub = shellwego::agent::v1::NodeAgentService::NewStub(grpc::CreateChannel(argv[7], credentials));
    results["NodeAgentService/GetNodeStatus"] =
        Unary(*stub, &shellwego::agent::v1::NodeAgentService::Stub::GetNodeStatus, shellwego::agent::v1::GetNodeStatusRequest());
  }

  std::string out = "{";
  for (const auto& [name, result] : results) out += (out.size() > 1 ? "," : "") + JsonString(name) + ":" + result;
  std::cout << out << "}\n";
  return 0;
}
