package server_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
	sipv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/sip/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// TestSIPUserSecretsStayOut: through the facade, against the sandbox
// (whose SIP users carry Opentact's ha1 and ha1b digests), a SIP user's
// answer over both doors holds neither the password nor its digests, in
// no field and not in other_fields, and the logs do not show the
// password.
func TestSIPUserSecretsStayOut(t *testing.T) {
	t.Parallel()
	const (
		domain   = "office.sip.example.com"
		password = "a long SIP secret"
	)
	f := startFacade(t, startSandbox(t).URL)
	domains := sipv1.NewSIPDomainServiceClient(f.conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic)
	if _, err := domains.CreateSIPDomain(ctx, &sipv1.CreateSIPDomainRequest{Domain: domain}); err != nil {
		t.Fatalf("CreateSIPDomain: %v", err)
	}
	made, err := domains.CreateSIPUser(ctx, &sipv1.CreateSIPUserRequest{Domain: domain, Login: "ann", Password: password,
		FirstName: proto.String("Ann"), Gender: proto.String("Female")})
	if err != nil {
		t.Fatalf("CreateSIPUser: %v", err)
	}
	user := made.GetSipUser()
	if user.GetLogin() != "ann" || user.GetFirstName() != "Ann" || user.GetSipDomain().GetDomain() != domain || !user.GetIsActive() || user.GetState() != "offline" {
		t.Errorf("user = %v", user)
	}
	digests := []string{md5hex("ann:" + domain + ":" + password), md5hex("ann@" + domain + ":" + domain + ":" + password)}
	leaks := func(where, text string) {
		t.Helper()
		for _, secret := range append([]string{password, `"ha1`}, digests...) {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %q:\n%s", where, secret, text)
			}
		}
	}
	check := func(where string, u *sipv1.SIPUser) {
		t.Helper()
		for k := range u.GetOtherFields() {
			if strings.EqualFold(k, "ha1") || strings.EqualFold(k, "ha1b") || strings.EqualFold(k, "password") {
				t.Errorf("%s: other_fields carries %s", where, k)
			}
		}
		b, _ := protojson.Marshal(u)
		leaks(where, string(b))
	}
	check("CreateSIPUser", user)

	updated, err := domains.UpdateSIPUser(ctx, &sipv1.UpdateSIPUserRequest{Domain: domain, Uuid: user.GetUuid(), Password: proto.String(password + "!"), IsActive: proto.Bool(false)})
	if err != nil {
		t.Fatalf("UpdateSIPUser: %v", err)
	}
	if updated.GetSipUser().GetIsActive() {
		t.Errorf("updated = %v", updated.GetSipUser())
	}
	check("UpdateSIPUser", updated.GetSipUser())
	listed, err := domains.ListSIPUsers(ctx, &sipv1.ListSIPUsersRequest{Domain: domain})
	if err != nil || len(listed.GetData()) != 1 {
		t.Fatalf("ListSIPUsers = %v, %v; want ann", listed, err)
	}
	check("ListSIPUsers", listed.GetData()[0])

	resp, body := f.rest(t, http.MethodGet, "/v1/sip-domains/"+domain+"/users/"+user.GetUuid(), http.Header{"Authorization": {demoBasic}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"login":"ann"`) {
		t.Fatalf("REST GetSIPUser: %d %s", resp.StatusCode, body)
	}
	leaks("the REST body", string(body))
	leaks("the logs", f.logs.String())
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestSIPConnectionLeasesEndToEnd: a number's calls go to a SIP
// connection and back through AssignLeases and RemoveLeases, each
// answering the leases whole, over gRPC and REST.
func TestSIPConnectionLeasesEndToEnd(t *testing.T) {
	t.Parallel()
	f := startFacade(t, startSandbox(t).URL)
	numbers := numberv1.NewNumberServiceClient(f.conn)
	connections := sipv1.NewSIPConnectionServiceClient(f.conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic)
	docs := strconv.Itoa(sandbox.DocsNumber)
	ordered, err := numbers.OrderNumbers(ctx, &numberv1.OrderNumbersRequest{Items: []*numberv1.OrderItem{{Tn: proto.String(docs), Features: []string{"voice"}}}})
	if err != nil || len(ordered.GetOrder().GetTnleases()) != 1 {
		t.Fatalf("OrderNumbers = %v, %v", ordered, err)
	}
	lease := ordered.GetOrder().GetTnleases()[0].GetUuid()
	made, err := connections.CreateSIPConnection(ctx, &sipv1.CreateSIPConnectionRequest{Name: "office", Ip: proto.String("203.0.113.7"), Port: 5060, Product: 1,
		Class4IngressTrunkSettings: &sipv1.TrunkSettingsParams{MediaType: proto.String("Proxy Media")},
		Class4EgressTrunkSettings:  &sipv1.TrunkSettingsParams{MediaType: proto.String("Bypass Media")}})
	if err != nil {
		t.Fatalf("CreateSIPConnection: %v", err)
	}
	conn := made.GetSipConnection()
	if conn.GetName() != "office" || conn.GetPort() != 5060 || conn.GetClass4IngressTrunkSettings().GetMediaType() != "Proxy Media" {
		t.Errorf("connection = %v", conn)
	}

	assigned, err := connections.AssignLeases(ctx, &sipv1.AssignLeasesRequest{Uuid: conn.GetUuid(), Add: []string{lease}})
	if err != nil {
		t.Fatalf("AssignLeases: %v", err)
	}
	if d := assigned.GetData(); len(d) != 1 || d[0].GetUuid() != lease || d[0].GetSipConnection().GetUuid() != conn.GetUuid() || d[0].GetTn().GetTn() != docs {
		t.Errorf("assigned = %v", d)
	}
	listed, err := connections.ListSIPConnectionLeases(ctx, &sipv1.ListSIPConnectionLeasesRequest{Uuid: conn.GetUuid()})
	if err != nil || len(listed.GetData()) != 1 {
		t.Errorf("ListSIPConnectionLeases = %v, %v; want the lease", listed, err)
	}

	resp, body := f.restBody(t, http.MethodPost, "/v1/sip-connections/"+conn.GetUuid()+"/leases:remove",
		http.Header{"Authorization": {demoBasic}, "Content-Type": {"application/json"}}, `{"remove":["`+lease+`"]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST RemoveLeases: %d %s", resp.StatusCode, body)
	}
	var removed sipv1.RemoveLeasesResponse
	if err := protojson.Unmarshal(body, &removed); err != nil || len(removed.GetData()) != 1 || removed.GetData()[0].GetSipConnection() != nil {
		t.Errorf("REST RemoveLeases = %s (%v), want the lease without a connection", body, err)
	}

	// The sandbox's domain names its connection by the uuid alone.
	domains := sipv1.NewSIPDomainServiceClient(f.conn)
	const domain = "trunk.sip.example.com"
	d, err := domains.CreateSIPDomain(ctx, &sipv1.CreateSIPDomainRequest{Domain: domain, SipConnection: proto.String(conn.GetUuid())})
	if err != nil || d.GetSipDomain().GetSipConnection().GetUuid() != conn.GetUuid() {
		t.Fatalf("CreateSIPDomain = %v, %v; want it on the connection", d, err)
	}
	// Opentact's 409: the connection is in use.
	_, err = connections.DeleteSIPConnection(ctx, &sipv1.DeleteSIPConnectionRequest{Uuid: conn.GetUuid()})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), domain) {
		t.Errorf("DeleteSIPConnection of a connection in use: %v, want FailedPrecondition naming the domain", err)
	}
	// "" takes the reference away (sent as null), and frees the connection.
	upd, err := domains.UpdateSIPDomain(ctx, &sipv1.UpdateSIPDomainRequest{Domain: domain, SipConnection: proto.String("")})
	if err != nil || upd.GetSipDomain().GetSipConnection() != nil {
		t.Errorf("UpdateSIPDomain clearing its connection = %v, %v", upd, err)
	}
	if _, err := domains.UpdateSIPDomain(ctx, &sipv1.UpdateSIPDomainRequest{Domain: domain, SipConnection: proto.String("not a uuid")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("UpdateSIPDomain with a connection that is no uuid: %v, want InvalidArgument", err)
	}
	if _, err := domains.DeleteSIPDomain(ctx, &sipv1.DeleteSIPDomainRequest{Domain: domain}); err != nil {
		t.Errorf("DeleteSIPDomain: %v", err)
	}
	if _, err := connections.DeleteSIPConnection(ctx, &sipv1.DeleteSIPConnectionRequest{Uuid: conn.GetUuid()}); err != nil {
		t.Errorf("DeleteSIPConnection: %v", err)
	}
}
