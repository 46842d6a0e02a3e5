#!/usr/bin/env bash
# Proves that proto/ generates for the languages mailpool ships no client for yet,
# with Debian's own toolchain (no downloads outside apt), into a temp dir:
#
#   Go      protoc-gen-go + protoc-gen-go-grpc; go vet, then a program that
#           round-trips a message and builds every service client (protobuf-go
#           panics at start-up on a name clash, so running it is the check)
#   Java    java + grpc-java; javac against Debian's protobuf/grpc jars when their
#           versions match protoc's, then a program that round-trips a message
#   Ruby    ruby + grpc-ruby; every file is loaded (descriptor pool, Mailpool::V1)
#   Kotlin, C#, Objective-C, PHP (+ grpc-php): generated only (no compiler in apt
#           that would add much; their names come from the same file options)
#
# protoc runs with --fatal_warnings. Keep dollar signs out of service and RPC
# comments: grpc's plugins up to 1.51 (Debian 12's) abort on one (grpc#32171). Installs what it needs with apt-get when run
# as root (CI); otherwise says what to install.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$SECONDS
say() { printf 'other-languages: %s (%ss)\n' "$*" "$((SECONDS - start))"; }

packages=(
  protobuf-compiler protobuf-compiler-grpc
  golang-go protoc-gen-go protoc-gen-go-grpc golang-google-protobuf-dev golang-google-grpc-dev
  libprotobuf-java libgrpc-java protobuf-compiler-grpc-java-plugin libgeronimo-annotation-1.3-spec-java
  ruby ruby-google-protobuf ruby-grpc
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v javac >/dev/null || missing+=(default-jdk-headless)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "other-languages: missing ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

tmp=$(mktemp -d /tmp/mailpool-other-languages.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
protos=(proto/mailpool/v1/*.proto)
services=(proto/mailpool/v1/*_service.proto)
gopath=$tmp/gopath
# protoc-gen-go writes under the go_package import path; GOPATH mode (no go.mod)
# lets Debian's /usr/share/gocode provide the protobuf and grpc modules offline.
mkdir -p "$gopath/src" "$tmp"/{java,kotlin,csharp,objc,php,ruby}
say "protoc $(protoc --version | cut -d' ' -f2): generating"
protoc --fatal_warnings -I proto \
  --go_out="$gopath/src" --go-grpc_out="$gopath/src" \
  --java_out="$tmp/java" --kotlin_out="$tmp/kotlin" \
  --csharp_out="$tmp/csharp" --objc_out="$tmp/objc" \
  --php_out="$tmp/php" --ruby_out="$tmp/ruby" \
  "${protos[@]}"
# Service stubs. grpc-java 1.41 annotates them with javax.annotation.Generated,
# which JDK 11+ dropped: the geronimo annotation jar provides it to javac.
protoc --fatal_warnings -I proto \
  --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
  --grpc-java_out="$tmp/java" \
  --plugin=protoc-gen-grpc-php=/usr/bin/grpc_php_plugin --grpc-php_out="$tmp/php" \
  --plugin=protoc-gen-grpc-ruby=/usr/bin/grpc_ruby_plugin --grpc-ruby_out="$tmp/ruby" \
  "${services[@]}"
for d in java kotlin csharp objc php ruby; do
  printf '  %-7s %3d files\n' "$d" "$(find "$tmp/$d" -type f | wc -l)"
done
gopkg=github.com/mailpool/mailpool/gen/go/mailpool/v1
printf '  %-7s %3d files\n' go "$(find "$gopath/src/$gopkg" -type f | wc -l)"

# The names the file options exist for: no Java class shadowing java.lang.Error,
# and Objective-C's Message prefixed (a bare "Message" would clash).
if [ -e "$tmp/java/io/mailpool/v1/Error.java" ]; then
  echo "other-languages: Java class io.mailpool.v1.Error would shadow java.lang.Error" >&2
  exit 1
fi
grep -q '@interface MPXMessage : GPBMessage' "$tmp/objc/mailpool/v1/Conversation.pbobjc.h" || {
  echo "other-languages: Objective-C Message is not MPXMessage" >&2
  exit 1
}

say "go $(go env GOVERSION): vet + run"
export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= GOTOOLCHAIN=local
mkdir -p "$gopath/src/check"
cat >"$gopath/src/check/main.go" <<'EOF'
package main

import (
	"fmt"

	mailpoolv1 "github.com/mailpool/mailpool/gen/go/mailpool/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func main() {
	in := &mailpoolv1.StreamEventsResponse{Message: &mailpoolv1.StreamEventsResponse_Event{
		Event: &mailpoolv1.Event{Seq: 7, Payload: &mailpoolv1.Event_EmailReplied{
			EmailReplied: &mailpoolv1.EmailReplied{Message: &mailpoolv1.Message{Subject: "hi"}}}}}}
	b, err := proto.Marshal(in)
	if err != nil {
		panic(err)
	}
	out := &mailpoolv1.StreamEventsResponse{}
	if err := proto.Unmarshal(b, out); err != nil || !proto.Equal(in, out) {
		panic(fmt.Sprint("round trip: ", err))
	}
	var cc grpc.ClientConnInterface
	_ = mailpoolv1.NewSendServiceClient(cc)
	_ = mailpoolv1.NewIdentityServiceClient(cc)
	_ = mailpoolv1.NewConversationServiceClient(cc)
	_ = mailpoolv1.NewEventServiceClient(cc)
	fmt.Println("  go      ok:", out.GetEvent().GetEmailReplied().GetMessage().ProtoReflect().Descriptor().FullName())
}
EOF
go vet "$gopkg" check
go run check

protoc_version=$(protoc --version | cut -d' ' -f2)
jar_version=$(dpkg-query -W -f='${Version}' libprotobuf-java | sed 's/-.*//')
if [ "$protoc_version" != "$jar_version" ]; then
  say "java: protoc $protoc_version but protobuf-java $jar_version; generated only"
else
  say "javac $(javac -version 2>&1 | cut -d' ' -f2) against protobuf-java $jar_version"
  cp=$(printf '/usr/share/java/%s.jar:' protobuf grpc-api grpc-stub grpc-protobuf grpc-protobuf-lite grpc-context guava \
    geronimo-annotation-1.3-spec)
  mkdir -p "$tmp/java/check" "$tmp/classes"
  cat >"$tmp/java/check/Main.java" <<'EOF'
package check;

import io.mailpool.v1.Message;
import io.mailpool.v1.SendServiceGrpc;
import io.mailpool.v1.StreamEventsResponse;

public final class Main {
  public static void main(String[] args) throws Exception {
    StreamEventsResponse in = StreamEventsResponse.newBuilder()
        .setEvent(io.mailpool.v1.Event.newBuilder().setSeq(7).setEmailReplied(
            io.mailpool.v1.EmailReplied.newBuilder().setMessage(Message.newBuilder().setSubject("hi"))))
        .build();
    StreamEventsResponse out = StreamEventsResponse.parseFrom(in.toByteArray());
    if (!in.equals(out)) throw new AssertionError("round trip");
    if (!SendServiceGrpc.SERVICE_NAME.equals("mailpool.v1.SendService")) throw new AssertionError();
    System.out.println("  java    ok: " + Message.getDescriptor().getFullName()
        + " as " + Message.class.getName() + ", outer " + io.mailpool.v1.ErrorProto.class.getName());
  }
}
EOF
  find "$tmp/java" -name '*.java' >"$tmp/java-files"
  # C1 only: a one-shot compile of generated code finishes in half the time.
  javac -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC -nowarn -encoding UTF-8 -d "$tmp/classes" -cp "$cp" @"$tmp/java-files"
  java -XX:TieredStopAtLevel=1 -cp "$tmp/classes:$cp" check.Main
fi

say "ruby $(ruby -e 'print RUBY_VERSION'): loading"
ruby -I "$tmp/ruby" -e '
  Dir.glob(File.join(ARGV[0], "mailpool/v1/*.rb")).sort.each { |f| require f }
  raise "no SendService stub" unless Mailpool::V1::SendService::Stub
  m = Mailpool::V1::Message.new(subject: "hi")
  raise "round trip" unless Mailpool::V1::Message.decode(Mailpool::V1::Message.encode(m)) == m
  puts "  ruby    ok: #{Mailpool::V1::Message.descriptor.name} as #{Mailpool::V1::Message}"
' "$tmp/ruby"
say "done"
