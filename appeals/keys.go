package appeals

// The index keys this package gives its audit entries (audit.Entry.Keys),
// so that exports can select a tenant's or a policy's history: the log
// stores them beside each entry and knows nothing of what they name.
// Every entry about a decision, or about an appeal of one, carries the
// decision's advertiser and policy; a policy's revisions carry its code;
// an advertiser's tokens carry the advertiser.
const (
	// KeyAdvertiser is the advertiser an entry is about (api:
	// advertiser_id; docket export --advertiser).
	KeyAdvertiser = "advertiser"
	// KeyPolicy is the policy an entry is about (api: policy_code;
	// docket export --policy).
	KeyPolicy = "policy"
)

// AuditKeys returns the index keys of an entry about advertiser and
// policy, leaving out the empty ones; nil when both are. Callers filtering
// an export by advertiser and policy use it too (audit.ExportFilter.Keys).
func AuditKeys(advertiser, policy string) map[string]string {
	if advertiser == "" && policy == "" {
		return nil
	}
	k := make(map[string]string, 2)
	if advertiser != "" {
		k[KeyAdvertiser] = advertiser
	}
	if policy != "" {
		k[KeyPolicy] = policy
	}
	return k
}
