package emulator

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// AzuriteEnv names the variable scripts/emulators.sh exports with Azurite's blob
// service URL, e.g. http://127.0.0.1:10000/devstoreaccount1.
const AzuriteEnv = "LEDGERVAULT_TEST_AZURITE"

// AzuriteAccount and AzuriteKey are Azurite's published development account and key.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a fresh container on the Azurite instance named by AzuriteEnv.
type Azurite struct {
	// ServiceURL is the blob service URL including the account.
	ServiceURL string
	// Container is the container created for the test.
	Container string
	// Service is a client of the blob service with the development key.
	Service *service.Client
	// Client is a client of the container.
	Client *container.Client
}

// StartAzurite creates a container on the running Azurite, skipping the test (or
// failing it under CI=true) when none is configured.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	url := os.Getenv(AzuriteEnv)
	if url == "" {
		Missing(t, "%s is not set (Azurite is started by scripts/emulators.sh)", AzuriteEnv)
	}
	cred, err := service.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	// An own transport, so the test can close its idle connections to the external
	// Azurite process (goleak would see their read loops otherwise).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	svc, err := service.NewClientWithSharedKeyCredential(url, cred, &service.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: tr}},
	})
	if err != nil {
		t.Fatalf("azblob client for %s: %v", url, err)
	}
	name := UniqueName("lv-test")
	c := svc.NewContainerClient(name)
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container %s on Azurite at %s: %v", name, url, err)
	}
	t.Cleanup(func() { _, _ = c.Delete(context.Background(), nil) })
	return &Azurite{ServiceURL: url, Container: name, Service: svc, Client: c}
}

// UncommittedBlobs lists the blobs of the container that hold only uncommitted
// blocks.
func (a *Azurite) UncommittedBlobs(ctx context.Context) ([]string, error) {
	list := func(uncommitted bool) ([]string, error) {
		opts := &container.ListBlobsFlatOptions{}
		if uncommitted {
			opts.Include = container.ListBlobsInclude{UncommittedBlobs: true}
		}
		var names []string
		p := a.Client.NewListBlobsFlatPager(opts)
		for p.More() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list blobs: %w", err)
			}
			for _, it := range page.Segment.BlobItems {
				names = append(names, *it.Name)
			}
		}
		return names, nil
	}
	all, err := list(false)
	if err != nil {
		return nil, err
	}
	committed := map[string]bool{}
	for _, n := range all {
		committed[n] = true
	}
	withUncommitted, err := list(true)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range withUncommitted {
		if !committed[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// OpenUploads counts the blobs that hold only uncommitted blocks.
func (a *Azurite) OpenUploads(ctx context.Context) (int, error) {
	names, err := a.UncommittedBlobs(ctx)
	return len(names), err
}
