/*
 * gen.c: the entity table and the deterministic data generator of
 * tds-zoho-sim.  Every record is a pure function of (seed, entity, seq), so
 * the same --seed gives the same bytes whatever else changes; records look
 * like the recorded real ones (see shared/zoho-api.md): ids of 19 digits,
 * "" for empty values, six-decimal quantities, +0530 times, ~15% untracked
 * items without stock fields, per-location stock on details only.
 */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    E_ITEMS,
    E_CONTACTS,
    E_SALESORDERS,
    E_INVOICES,
    E_CUSTOMERPAYMENTS,
    E_CREDITNOTES,
    E_BILLS,
    E_VENDORPAYMENTS,
    E_USERS,
    E_LOCATIONS,
    E_INVADJ,
    E_PRICEBOOKS,
    E_PURCHASEORDERS, /* last: the others' ids and data stay as they were */
};

static const char *const st_active[] = {"active", "inactive", NULL};
static const char *const st_users[] = {"active", "inactive", "invited", NULL};
static const char *const st_so[] = {"draft", "open", "invoiced", "void", NULL};
static const char *const st_inv[] = {"draft", "sent", "paid", "overdue", "partially_paid", "void",
                                     NULL};
static const char *const st_cn[] = {"draft", "open", "closed", "void", NULL};
static const char *const st_adj[] = {"draft", "adjusted", NULL};
static const char *const st_po[] = {"draft", "issued", "partially_received", "received", "billed",
                                    "cancelled", NULL};

#define BOTH (SIM_BOOKS | SIM_INVENTORY)

const struct sim_entity sim_entities[SIM_ENTITIES] = {
    {"items", "item", "item_id", "Item", "Items", BOTH, SIM_INVENTORY, st_active, 1000,
     "locations"},
    {"contacts", "contact", "contact_id", "Contact", "Contacts", BOTH, 0, st_active, 200, NULL},
    {"salesorders", "salesorder", "salesorder_id", "Sales Order", "Sales Orders", BOTH, BOTH, st_so,
     400, "line_items"},
    {"invoices", "invoice", "invoice_id", "Invoice", "Invoices", BOTH, BOTH, st_inv, 500,
     "line_items"},
    {"customerpayments", "payment", "payment_id", "Payment", "Customer Payments", BOTH, 0, NULL,
     300, NULL},
    {"creditnotes", "creditnote", "creditnote_id", "Credit Note", "Credit Notes", BOTH, 0, st_cn,
     50, "line_items"},
    {"bills", "bill", "bill_id", "Bill", "Bills", BOTH, BOTH, st_inv, 150, "line_items"},
    {"vendorpayments", "vendorpayment", "payment_id", "Vendor Payment", "Vendor Payments", BOTH,
     BOTH, NULL, 100, NULL},
    {"users", "user", "user_id", "User", "Users", BOTH, 0, st_users, 8, NULL},
    {"locations", "location", "location_id", "Location", "Locations", BOTH, 0, st_active, 4, NULL},
    {"inventoryadjustments", "inventory_adjustment", "inventory_adjustment_id",
     "Inventory Adjustment", "Inventory Adjustments", SIM_INVENTORY, 0, st_adj, 60, "line_items"},
    {"pricebooks", "pricebook", "pricebook_id", "Price Book", "Price Books", SIM_INVENTORY, 0,
     st_active, 5, NULL},
    {"purchaseorders", "purchaseorder", "purchaseorder_id", "Purchase Order", "Purchase Orders",
     BOTH, 0, st_po, 120, "line_items"},
};

int sim_entity_find(const char *name)
{
    for (int i = 0; i < SIM_ENTITIES; i++)
        if (strcmp(sim_entities[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- rng: splitmix64 ---- */

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
    return sim_rng_next(r) % n;
}

double sim_rng_unit(struct sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) / 9007199254740992.0;
}

struct sim_rng sim_rng_for(uint64_t seed, int ent, uint64_t seq)
{
    struct sim_rng r = {seed * 0x2545f4914f6cdd1dULL ^ ((uint64_t)ent << 40) ^ seq};
    sim_rng_next(&r);
    r.s ^= sim_rng_next(&r);
    return r;
}

/* ---- time ---- */

#define ORG_OFFSET 19800 /* +0530 */
#define HISTORY_END 1762324570LL /* 2025-11-05T12:06:10+0530 */
#define DAY 86400LL

void sim_time_format(int64_t t, char *buf)
{
    time_t local = (time_t)(t + ORG_OFFSET);
    struct tm tm;
    gmtime_r(&local, &tm);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d+0530", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void date_format(int64_t t, char *buf)
{
    time_t local = (time_t)(t + ORG_OFFSET);
    struct tm tm;
    gmtime_r(&local, &tm);
    snprintf(buf, 64, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

bool sim_time_parse(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n != 19)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    const char *p = s + n;
    long off = ORG_OFFSET;
    if (*p == 'Z' && p[1] == '\0') {
        off = 0;
    } else if (*p == '+' || *p == '-' || *p == ' ') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh, om;
        if (strlen(p) == 4 && sscanf(p, "%2d%2d", &oh, &om) == 2)
            ;
        else if (strlen(p) == 5 && p[2] == ':' && sscanf(p, "%2d:%2d", &oh, &om) == 2)
            ;
        else
            return false;
        off = sign * (oh * 3600L + om * 60L);
    } else if (*p != '\0') {
        return false;
    }
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm) - off;
    return true;
}

/* ---- word lists ---- */

#define PICK(r, a) ((a)[sim_rng_below((r), TDS_ARRAY_LEN(a))])

static const char *const adjectives[] = {
    "Premium", "Classic", "Compact", "Deluxe",  "Eco",     "Heavy Duty", "Mini",  "Pro",
    "Smart",   "Ultra",   "Vintage", "Wireless", "Stainless", "Organic", "Rugged", "Slim"};
static const char *const nouns[] = {
    "Widget", "Gadget",  "Bolt Set", "Cable",      "Charger",  "Drill",    "Hammer",  "Kettle",
    "Lamp",   "Mug",     "Notebook", "Pen",        "Router",   "Speaker",  "T-Shirt", "Backpack",
    "Bottle", "Chair",   "Desk",     "Fan",        "Gloves",   "Headphones", "Keyboard", "Monitor",
    "Mouse",  "Pillow",  "Screwdriver", "Tape",    "Towel",    "Wrench"};
static const char *const variants[] = {"Black", "White", "Red",    "Blue", "Green",
                                       "Grey",  "Small", "Medium", "Large", "XL"};
static const char *const brands[] = {"Acme",  "Globex", "Initech", "Umbrella", "Hooli",
                                     "Stark", "Wayne",  "Soylent", "Tyrell",   "Vandelay"};
static const char *const categories[] = {"Electronics", "Hardware", "Home",    "Office",
                                         "Apparel",     "Kitchen",  "Outdoor", "Tools"};
static const char *const units[] = {"pcs", "pcs", "pcs", "box", "kg", "m", "pair", "set"};
static const char *const first_names[] = {"Aarav", "Priya", "Rahul", "Ananya", "Vikram", "Meera",
                                          "Arjun", "Kavya", "Rohan", "Isha",   "Sanjay", "Neha",
                                          "John",  "Maria", "Ahmed", "Li",     "Fatima", "David"};
static const char *const last_names[] = {"Sharma", "Patel", "Iyer",   "Reddy", "Nair",  "Gupta",
                                         "Khan",   "Singh", "Mehta",  "Das",   "Smith", "Garcia",
                                         "Chen",   "Ali",   "Kapoor", "Rao"};
static const char *const company_words[] = {"Sunrise", "Lotus",  "Orbit",  "Crescent", "Summit",
                                            "Harbor",  "Falcon", "Indigo", "Maple",    "Zenith",
                                            "Coral",   "Everest", "Nova",  "Pioneer",  "Vertex"};
static const char *const company_kinds[] = {"Traders", "Enterprises", "Retail", "Industries",
                                            "Distributors", "Supplies", "Stores", "Exports"};
static const char *const company_suffix[] = {"Pvt Ltd", "LLP", "Ltd", "& Co", "Inc"};
static const char *const cities[] = {"Mumbai", "Bengaluru", "Chennai", "Pune", "Hyderabad",
                                     "Delhi",  "Kolkata",   "Kochi",   "Jaipur", "Ahmedabad"};
static const char *const location_names[] = {"Head Office",   "Main Warehouse", "North Store",
                                             "South Depot",   "Airport Kiosk",  "Harbour Warehouse",
                                             "City Centre Shop", "East Hub"};
static const char *const pay_modes[] = {"cash", "bank transfer", "cheque", "creditcard", "upi"};

/* ---- helpers ---- */

uint64_t sim_id_for(int ent, uint64_t seq)
{
    /* numeric-ids: 16 digits, as in Zoho's documented samples (a double
     * holds them); else 19, as real organizations have */
    uint64_t base = (sim_shapes & SIM_SHAPE_NUMERIC_IDS) ? 4815000000000000ULL
                                                         : 4815000000000000000ULL;
    uint64_t step = (sim_shapes & SIM_SHAPE_NUMERIC_IDS) ? 10000000000000ULL / 100
                                                         : 10000000000000ULL;
    return base + (uint64_t)ent * step + 44208ULL + seq * 13ULL;
}

/* ---- shapes ---- */

unsigned sim_shapes;

bool sim_shapes_parse(const char *spec, unsigned *out, char **bad)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"numeric-ids", SIM_SHAPE_NUMERIC_IDS},
                 {"stock-figures", SIM_SHAPE_STOCK_FIGURES},
                 {"hide-inactive", SIM_SHAPE_HIDE_INACTIVE},
                 {"books-pc-array", SIM_SHAPE_BOOKS_PC_ARRAY},
                 {"small-pages", SIM_SHAPE_SMALL_PAGES}};
    *out = 0;
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0) {
                *out |= names[i].bit;
                found = true;
            }
        if (!found && n > 0) {
            *bad = strndup(p, n);
            return false;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

bool sim_shape_numeric_key(const char *key)
{
    return (sim_shapes & SIM_SHAPE_NUMERIC_IDS) && key &&
           (!strcmp(key, "item_id") || !strcmp(key, "location_id") ||
            !strcmp(key, "warehouse_id"));
}

static void add_id(cJSON *o, const char *k, uint64_t id)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)id);
    cJSON_AddStringToObject(o, k, buf);
}

static void add_str(cJSON *o, const char *k, const char *v)
{
    cJSON_AddStringToObject(o, k, v);
}

static void add_fmt(cJSON *o, const char *k, const char *fmt, ...) TDS_PRINTF(3, 4);
static void add_fmt(cJSON *o, const char *k, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(o, k, buf);
}

static void add_num(cJSON *o, const char *k, double v)
{
    cJSON_AddNumberToObject(o, k, v);
}

static double money(double v)
{
    return round(v * 100.0) / 100.0;
}

static void add_time(cJSON *o, const char *k, int64_t t)
{
    char buf[64];
    sim_time_format(t, buf);
    cJSON_AddStringToObject(o, k, buf);
}

static void add_date(cJSON *o, const char *k, int64_t t)
{
    char buf[64];
    date_format(t, buf);
    cJSON_AddStringToObject(o, k, buf);
}

/* Modified and created times of a generated record: clusters of ~50 per second. */
static void history_times(const struct sim_config *cfg, int ent, struct sim_rng *r, int64_t now,
                          int64_t *created, int64_t *modified)
{
    if (now >= 0) {
        *created = *modified = now;
        return;
    }
    long n = cfg->counts[ent];
    uint64_t clusters = n / 50 > 0 ? (uint64_t)n / 50 : 1;
    int64_t span = 500 * DAY;
    int64_t step = span / (int64_t)clusters;
    if (step < 1)
        step = 1;
    uint64_t c = sim_rng_below(r, clusters);
    *modified = HISTORY_END - (int64_t)(clusters - 1 - c) * step;
    *created = *modified - (int64_t)sim_rng_below(r, 300) * DAY - (int64_t)sim_rng_below(r, DAY);
}

static const char *status_pick(int ent, struct sim_rng *r)
{
    const char *const *st = sim_entities[ent].statuses;
    if (st == st_active)
        return sim_rng_below(r, 10) == 0 ? "inactive" : "active";
    size_t n = 0;
    while (st[n])
        n++;
    return st[sim_rng_below(r, n)];
}

/* Identities that other records refer to, drawn from their own stream. */
struct contact_id {
    uint64_t id;
    bool vendor;
    char name[96], company[96], first[32], last[32];
};

static void contact_identity(const struct sim_config *cfg, uint64_t seq, struct contact_id *c)
{
    struct sim_rng r = sim_rng_for(cfg->seed, 100 + E_CONTACTS, seq);
    c->id = sim_id_for(E_CONTACTS, seq);
    c->vendor = seq % 5 == 4;
    snprintf(c->first, sizeof(c->first), "%s", PICK(&r, first_names));
    snprintf(c->last, sizeof(c->last), "%s", PICK(&r, last_names));
    const char *w = PICK(&r, company_words);
    const char *k = PICK(&r, company_kinds);
    const char *s = PICK(&r, company_suffix);
    snprintf(c->company, sizeof(c->company), "%s %s %s", w, k, s);
    if (sim_rng_below(&r, 4) == 0)
        snprintf(c->name, sizeof(c->name), "%s %s", c->first, c->last);
    else
        snprintf(c->name, sizeof(c->name), "%s", c->company);
}

/* A customer (vendor) contact for a document, or id 0 when there is none. */
static void pick_contact(const struct sim_config *cfg, struct sim_rng *r, bool vendor,
                         struct contact_id *c)
{
    long n = cfg->counts[E_CONTACTS];
    memset(c, 0, sizeof(*c));
    if (vendor) {
        if (n < 5)
            return;
        contact_identity(cfg, sim_rng_below(r, (uint64_t)n / 5) * 5 + 4, c);
    } else {
        if (n < 1)
            return;
        uint64_t s = sim_rng_below(r, (uint64_t)n);
        if (s % 5 == 4)
            s--;
        contact_identity(cfg, s, c);
    }
}

struct item_ident {
    uint64_t id;
    char name[96], sku[32], unit[8];
    double rate;
};

static void item_identity(const struct sim_config *cfg, uint64_t seq, struct item_ident *it)
{
    struct sim_rng r = sim_rng_for(cfg->seed, 100 + E_ITEMS, seq);
    it->id = sim_id_for(E_ITEMS, seq);
    const char *a = PICK(&r, adjectives), *n = PICK(&r, nouns), *v = PICK(&r, variants);
    snprintf(it->name, sizeof(it->name), "%s %s %s", a, n, v);
    snprintf(it->sku, sizeof(it->sku), "%c%c-%06llu", n[0], a[0], (unsigned long long)seq + 1);
    snprintf(it->unit, sizeof(it->unit), "%s", PICK(&r, units));
    it->rate = money(5 + sim_rng_unit(&r) * 2000);
}

static void location_identity(uint64_t seq, char *name, size_t size)
{
    if (seq < TDS_ARRAY_LEN(location_names))
        snprintf(name, size, "%s", location_names[seq]);
    else
        snprintf(name, size, "Branch %llu", (unsigned long long)seq + 1);
}

static void add_line_items(const struct sim_config *cfg, cJSON *o, struct sim_rng *r, int ent,
                           uint64_t seq, double *total)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "line_items");
    int n = 1 + (int)sim_rng_below(r, 4);
    *total = 0;
    for (int i = 0; i < n; i++) {
        cJSON *li = cJSON_CreateObject();
        struct item_ident it;
        long ni = cfg->counts[E_ITEMS] > 0 ? cfg->counts[E_ITEMS] : 1;
        item_identity(cfg, sim_rng_below(r, (uint64_t)ni), &it);
        double q = (double)(1 + sim_rng_below(r, 20));
        add_id(li, "line_item_id", sim_id_for(ent, seq) + 500000000000ULL + (uint64_t)i);
        add_id(li, "item_id", it.id);
        add_str(li, "name", it.name);
        add_str(li, "sku", it.sku);
        add_str(li, "description", "");
        add_num(li, "quantity", q);
        add_str(li, "unit", it.unit);
        add_num(li, "rate", it.rate);
        add_num(li, "discount", 0);
        add_str(li, "tax_id", "4815000000000001003");
        add_str(li, "tax_name", "GST18");
        add_num(li, "tax_percentage", 18);
        add_num(li, "item_total", money(q * it.rate));
        *total += money(q * it.rate);
        cJSON_AddItemToArray(arr, li);
    }
}

/* ---- items ---- */

void sim_item_totals(cJSON *item)
{
    cJSON *locs = cJSON_GetObjectItemCaseSensitive(item, "locations");
    const char *p = "location_";
    if (!locs) {
        locs = cJSON_GetObjectItemCaseSensitive(item, "warehouses");
        p = "warehouse_";
    }
    if (!cJSON_IsArray(locs) || !cJSON_HasObjectItem(item, "stock_on_hand"))
        return;
    double on = 0, av = 0, act = 0;
    char k1[64], k2[64], k3[64];
    snprintf(k1, sizeof(k1), "%sstock_on_hand", p);
    snprintf(k2, sizeof(k2), "%savailable_stock", p);
    snprintf(k3, sizeof(k3), "%sactual_available_stock", p);
    cJSON *l;
    cJSON_ArrayForEach(l, locs)
    {
        on += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k1));
        av += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k2));
        act += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k3));
    }
    cJSON_ReplaceItemInObjectCaseSensitive(item, "stock_on_hand", cJSON_CreateNumber(on));
    cJSON_ReplaceItemInObjectCaseSensitive(item, "available_stock", cJSON_CreateNumber(av));
    cJSON_ReplaceItemInObjectCaseSensitive(item, "actual_available_stock", cJSON_CreateNumber(act));
    if (cJSON_HasObjectItem(item, "committed_stock"))
        cJSON_ReplaceItemInObjectCaseSensitive(item, "committed_stock", cJSON_CreateNumber(on - av));
    if (cJSON_HasObjectItem(item, "available_for_sale_stock"))
        cJSON_ReplaceItemInObjectCaseSensitive(item, "available_for_sale_stock",
                                               cJSON_CreateNumber(av));
}

/* stock-figures: what Zoho's item details carry beside the three stock
 * figures, per location: for sale = available - what is reserved for
 * orders (the available stock, as the item totals have it). */
static void add_stock_figures(cJSON *e, const char *p, double on, double committed)
{
    char k[80];
    double sale = on - committed;
    snprintf(k, sizeof(k), "%s_available_for_sale_stock", p);
    add_num(e, k, sale);
    snprintf(k, sizeof(k), "%s_actual_available_for_sale_stock", p);
    add_num(e, k, sale);
    snprintf(k, sizeof(k), "%s_committed_stock", p);
    add_num(e, k, committed);
    snprintf(k, sizeof(k), "%s_actual_committed_stock", p);
    add_num(e, k, committed);
}

static cJSON *gen_item(const struct sim_config *cfg, uint64_t seq, struct sim_rng *r,
                       int64_t created, int64_t modified)
{
    cJSON *o = cJSON_CreateObject();
    struct item_ident it;
    item_identity(cfg, seq, &it);
    uint64_t id = sim_id_for(E_ITEMS, seq);
    bool tracked = sim_rng_below(r, 100) >= 15;
    bool service = !tracked && sim_rng_below(r, 2) == 0;
    const char *brand = PICK(r, brands);
    const char *category = PICK(r, categories);
    size_t cat = 0;
    while (categories[cat] != category)
        cat++;
    const char *status = status_pick(E_ITEMS, r);
    unsigned img = sim_rng_below(r, 10) < 3 ? (sim_rng_below(r, 3) == 0 ? 2 : 1) : 0;
    double prate = money(it.rate * (0.55 + 0.3 * sim_rng_unit(r)));
    bool half = strcmp(it.unit, "kg") == 0;

    add_id(o, "item_id", id);
    add_str(o, "name", it.name);
    add_str(o, "item_name", it.name);
    add_str(o, "unit", it.unit);
    add_str(o, "status", status);
    add_str(o, "source", "user");
    cJSON_AddBoolToObject(o, "is_linked_with_zohocrm", false);
    add_str(o, "zcrm_product_id", "");
    add_fmt(o, "description", "%s %s by %s", it.name, category, brand);
    add_str(o, "brand", brand);
    add_fmt(o, "manufacturer", "%s Manufacturing", brand);
    add_id(o, "category_id", sim_id_for(E_PRICEBOOKS, 900000 + cat));
    add_str(o, "category_name", category);
    if (sim_rng_below(r, 100) == 0)
        add_fmt(o, "rate", "%.2f", it.rate); /* some integrations see strings: tolerate them */
    else
        add_num(o, "rate", it.rate);
    add_str(o, "tax_id", "4815000000000001003");
    add_str(o, "tax_name", "GST18");
    add_num(o, "tax_percentage", 18);
    add_str(o, "tax_type", "Tax");
    add_str(o, "tax_exemption_id", "");
    add_str(o, "tax_exemption_code", "");
    add_str(o, "account_id", "4815000000000000388");
    add_str(o, "account_name", "Sales");
    add_str(o, "purchase_account_id", "4815000000000000509");
    add_str(o, "purchase_account_name", "Cost of Goods Sold");
    if (tracked) {
        add_str(o, "inventory_account_id", "4815000000000000367");
        add_str(o, "inventory_account_name", "Inventory Asset");
    } else {
        add_str(o, "inventory_account_id", "");
        add_str(o, "inventory_account_name", "");
    }
    add_fmt(o, "purchase_description", "%s (purchase)", it.name);
    add_num(o, "purchase_rate", prate);
    add_str(o, "purchase_tax_id", "4815000000000001003");
    add_str(o, "purchase_tax_name", "GST18");
    add_str(o, "item_type", tracked ? "inventory" : (service ? "sales" : "sales_and_purchases"));
    add_str(o, "product_type", service ? "service" : "goods");
    cJSON_AddBoolToObject(o, "is_taxable", true);
    cJSON_AddBoolToObject(o, "track_inventory", tracked);
    cJSON_AddBoolToObject(o, "can_be_sold", true);
    cJSON_AddBoolToObject(o, "can_be_purchased", !service);
    cJSON_AddBoolToObject(o, "is_returnable", !service);
    add_str(o, "sku", it.sku);
    if (service) {
        add_str(o, "upc", "");
        add_str(o, "ean", "");
        add_str(o, "isbn", "");
        add_str(o, "part_number", "");
    } else {
        add_fmt(o, "upc", "%012llu", (unsigned long long)(sim_rng_next(r) % 1000000000000ULL));
        add_fmt(o, "ean", "%013llu", (unsigned long long)(sim_rng_next(r) % 10000000000000ULL));
        add_str(o, "isbn", "");
        add_fmt(o, "part_number", "PN-%05llu", (unsigned long long)sim_rng_below(r, 100000));
    }
    add_str(o, "hsn_or_sac", service ? "998314" : "847130");
    add_num(o, "reorder_level", tracked ? (double)(5 * sim_rng_below(r, 5)) : 0);
    struct contact_id vendor;
    pick_contact(cfg, r, true, &vendor);
    if (vendor.id) {
        add_id(o, "vendor_id", vendor.id);
        add_str(o, "vendor_name", vendor.name);
    } else {
        add_str(o, "vendor_id", "");
        add_str(o, "vendor_name", "");
    }

    cJSON *locs = NULL;
    if (tracked) {
        /* Placeholders filled by sim_item_totals below. */
        add_num(o, "stock_on_hand", 0);
        add_num(o, "available_stock", 0);
        add_num(o, "actual_available_stock", 0);
        add_num(o, "committed_stock", 0);
        add_num(o, "available_for_sale_stock", 0);
    }
    cJSON_AddBoolToObject(o, "has_attachment", false);
    cJSON_AddBoolToObject(o, "is_combo_product", false);
    if (img) {
        add_fmt(o, "image_name", "%s_%llu.%s", it.sku, (unsigned long long)seq,
                img == 1 ? "png" : "jpg");
        add_str(o, "image_type", img == 1 ? "png" : "jpg");
        add_id(o, "image_document_id", id + 700000000000ULL);
    } else {
        add_str(o, "image_name", "");
        add_str(o, "image_type", "");
        add_str(o, "image_document_id", "");
    }
    static const char *const attr_names[] = {"Colour", "Size", "Material"};
    static const char *const attr_opts[][4] = {{"Black", "White", "Red", "Blue"},
                                               {"S", "M", "L", "XL"},
                                               {"Steel", "Plastic", "Cotton", "Wood"}};
    bool grouped = sim_rng_below(r, 3) == 0;
    for (int a = 0; a < 3; a++) {
        char k[40];
        unsigned opt = (unsigned)sim_rng_below(r, 4);
        snprintf(k, sizeof(k), "attribute_id%d", a + 1);
        if (grouped)
            add_id(o, k, sim_id_for(E_PRICEBOOKS, 950000 + (uint64_t)a));
        else
            add_str(o, k, "");
        snprintf(k, sizeof(k), "attribute_name%d", a + 1);
        add_str(o, k, grouped ? attr_names[a] : "");
        snprintf(k, sizeof(k), "attribute_option_id%d", a + 1);
        if (grouped)
            add_id(o, k, sim_id_for(E_PRICEBOOKS, 960000 + (uint64_t)a * 10 + opt));
        else
            add_str(o, k, "");
        snprintf(k, sizeof(k), "attribute_option_name%d", a + 1);
        add_str(o, k, grouped ? attr_opts[a][opt] : "");
        snprintf(k, sizeof(k), "attribute_option_data%d", a + 1);
        add_str(o, k, "");
    }
    if (grouped) {
        add_id(o, "group_id", sim_id_for(E_PRICEBOOKS, 800000 + seq / 8));
        add_fmt(o, "group_name", "%s %s", PICK(r, adjectives), category);
    } else {
        add_str(o, "group_id", "");
        add_str(o, "group_name", "");
    }
    if (service) {
        add_str(o, "length", "");
        add_str(o, "width", "");
        add_str(o, "height", "");
        add_str(o, "weight", "");
    } else {
        add_fmt(o, "length", "%llu", (unsigned long long)(5 + sim_rng_below(r, 60)));
        add_fmt(o, "width", "%llu", (unsigned long long)(5 + sim_rng_below(r, 40)));
        add_fmt(o, "height", "%llu", (unsigned long long)(1 + sim_rng_below(r, 30)));
        add_fmt(o, "weight", "%.2f", 0.1 + sim_rng_unit(r) * 20);
    }
    add_str(o, "weight_unit", "kg");
    add_str(o, "dimension_unit", "cm");
    add_time(o, "created_time", created);
    add_time(o, "last_modified_time", modified);
    cJSON *tags = cJSON_AddArrayToObject(o, "tags");
    if (sim_rng_below(r, 4) == 0) {
        cJSON *t = cJSON_CreateObject();
        add_str(t, "tag_id", "4815000000000002001");
        add_str(t, "tag_option_id", "4815000000000002005");
        add_str(t, "tag_name", "Season");
        add_str(t, "tag_option_name", sim_rng_below(r, 2) ? "Summer" : "Winter");
        cJSON_AddItemToArray(tags, t);
    }
    cJSON_AddArrayToObject(o, "custom_fields");
    add_fmt(o, "cf_shelf", "%c%llu", 'A' + (int)sim_rng_below(r, 8),
            (unsigned long long)(1 + sim_rng_below(r, 40)));

    /* Per-location stock: detail only (store.c serves it apart). */
    const char *p = cfg->legacy_warehouses ? "warehouse" : "location";
    locs = cJSON_AddArrayToObject(o, cfg->legacy_warehouses ? "warehouses" : "locations");
    if (tracked) {
        long nl = cfg->counts[E_LOCATIONS];
        for (long l = 0; l < nl; l++) {
            cJSON *e = cJSON_CreateObject();
            char k[64], name[64];
            double on = sim_rng_below(r, 6) == 0 ? 0 : (double)sim_rng_below(r, 400);
            if (half && on > 0 && sim_rng_below(r, 2))
                on += 0.5;
            double committed = on >= 1 ? (double)sim_rng_below(r, (uint64_t)on / 5 + 1) : 0;
            location_identity((uint64_t)l, name, sizeof(name));
            snprintf(k, sizeof(k), "%s_id", p);
            add_id(e, k, sim_id_for(E_LOCATIONS, (uint64_t)l));
            snprintf(k, sizeof(k), "%s_name", p);
            add_str(e, k, name);
            add_str(e, "status", "active");
            cJSON_AddBoolToObject(e, "is_primary", l == 0);
            snprintf(k, sizeof(k), "%s_stock_on_hand", p);
            add_num(e, k, on);
            snprintf(k, sizeof(k), "%s_available_stock", p);
            add_num(e, k, on - committed);
            snprintf(k, sizeof(k), "%s_actual_available_stock", p);
            add_num(e, k, on - committed);
            if (sim_shapes & SIM_SHAPE_STOCK_FIGURES)
                add_stock_figures(e, p, on, committed);
            cJSON_AddItemToArray(locs, e);
        }
        sim_item_totals(o);
    } else if (sim_shapes & SIM_SHAPE_STOCK_FIGURES) {
        /* as Zoho: an item that does not track inventory has no array at all */
        cJSON_DeleteItemFromObjectCaseSensitive(o, cfg->legacy_warehouses ? "warehouses"
                                                                           : "locations");
    }
    return o;
}

/* ---- the other entities ---- */

static cJSON *gen_contact(const struct sim_config *cfg, uint64_t seq, struct sim_rng *r,
                          int64_t created, int64_t modified)
{
    cJSON *o = cJSON_CreateObject();
    struct contact_id c;
    contact_identity(cfg, seq, &c);
    bool business = strcmp(c.name, c.company) == 0;
    double recv = c.vendor ? 0 : money(sim_rng_below(r, 3) ? sim_rng_unit(r) * 90000 : 0);
    double pay = c.vendor ? money(sim_rng_unit(r) * 150000) : 0;
    add_id(o, "contact_id", c.id);
    add_str(o, "contact_name", c.name);
    add_str(o, "customer_name", c.name);
    add_str(o, "vendor_name", c.name);
    add_str(o, "company_name", business ? c.company : "");
    add_fmt(o, "website", business ? "www.%.6s.example" : "%s", business ? c.company : "");
    add_str(o, "language_code", "en");
    add_str(o, "language_code_formatted", "English");
    add_str(o, "contact_type", c.vendor ? "vendor" : "customer");
    add_str(o, "contact_type_formatted", c.vendor ? "Vendor" : "Customer");
    add_str(o, "status", status_pick(E_CONTACTS, r));
    add_str(o, "customer_sub_type", business ? "business" : "individual");
    add_str(o, "source", "user");
    cJSON_AddBoolToObject(o, "is_linked_with_zohocrm", false);
    add_num(o, "payment_terms", 15);
    add_str(o, "payment_terms_label", "Net 15");
    add_str(o, "currency_id", "4815000000000000099");
    add_str(o, "currency_code", "INR");
    add_str(o, "first_name", c.first);
    add_str(o, "last_name", c.last);
    add_fmt(o, "email", "%s.%s%llu@example.com", c.first, c.last, (unsigned long long)seq);
    add_fmt(o, "phone", "+91 22 %04llu %04llu", (unsigned long long)sim_rng_below(r, 10000),
            (unsigned long long)sim_rng_below(r, 10000));
    add_fmt(o, "mobile", "+91 9%09llu", (unsigned long long)sim_rng_below(r, 1000000000));
    add_str(o, "portal_status", "disabled");
    add_str(o, "place_of_contact", "MH");
    add_str(o, "gst_no", "");
    cJSON_AddBoolToObject(o, "has_attachment", false);
    add_num(o, "outstanding_receivable_amount", recv);
    add_num(o, "outstanding_receivable_amount_bcy", recv);
    add_num(o, "outstanding_payable_amount", pay);
    add_num(o, "outstanding_payable_amount_bcy", pay);
    add_num(o, "unused_credits_receivable_amount", 0);
    add_num(o, "unused_credits_payable_amount", 0);
    add_str(o, "billing_city", PICK(r, cities));
    add_time(o, "created_time", created);
    add_time(o, "last_modified_time", modified);
    cJSON_AddArrayToObject(o, "custom_fields");
    return o;
}

static void doc_common(const struct sim_config *cfg, cJSON *o, struct sim_rng *r, int ent,
                       uint64_t seq, const char *status, bool vendor, const char *num_key,
                       const char *prefix, int64_t created, int64_t modified)
{
    struct contact_id c;
    pick_contact(cfg, r, vendor, &c);
    add_id(o, sim_entities[ent].id_field, sim_id_for(ent, seq));
    if (vendor) {
        if (c.id)
            add_id(o, "vendor_id", c.id);
        else
            add_str(o, "vendor_id", "");
        add_str(o, "vendor_name", c.name);
    } else {
        if (c.id)
            add_id(o, "customer_id", c.id);
        else
            add_str(o, "customer_id", "");
        add_str(o, "customer_name", c.name);
        add_str(o, "company_name", c.company);
    }
    if (status)
        add_str(o, "status", status);
    add_fmt(o, num_key, "%s-%06llu", prefix, (unsigned long long)seq + 1);
    if (sim_rng_below(r, 3) == 0)
        add_fmt(o, "reference_number", "REF-%05llu", (unsigned long long)sim_rng_below(r, 99999));
    else
        add_str(o, "reference_number", "");
    add_date(o, "date", created);
    add_str(o, "currency_id", "4815000000000000099");
    add_str(o, "currency_code", "INR");
    add_num(o, "exchange_rate", 1);
    add_time(o, "created_time", created);
    add_time(o, "last_modified_time", modified);
}

static cJSON *gen_doc(const struct sim_config *cfg, int ent, uint64_t seq, struct sim_rng *r,
                      int64_t created, int64_t modified)
{
    cJSON *o = cJSON_CreateObject();
    const char *status = status_pick(ent, r);
    double total = 0;
    cJSON *tmp = cJSON_CreateObject();
    add_line_items(cfg, tmp, r, ent, seq, &total);
    total = money(total * 1.18);
    double balance = total;
    if (!strcmp(status, "paid") || !strcmp(status, "closed") || !strcmp(status, "void") ||
        !strcmp(status, "invoiced"))
        balance = 0;
    else if (!strcmp(status, "partially_paid"))
        balance = money(total * (0.1 + 0.8 * sim_rng_unit(r)));

    switch (ent) {
    case E_INVOICES:
        doc_common(cfg, o, r, ent, seq, status, false, "invoice_number", "INV", created, modified);
        add_date(o, "due_date", created + 15 * DAY);
        cJSON_AddBoolToObject(o, "ach_payment_initiated", false);
        cJSON_AddBoolToObject(o, "is_viewed_by_client", sim_rng_below(r, 2) == 0);
        cJSON_AddBoolToObject(o, "is_emailed", strcmp(status, "draft") != 0);
        add_num(o, "reminders_sent", 0);
        add_str(o, "last_reminder_sent_date", "");
        add_str(o, "payment_expected_date", "");
        add_str(o, "last_payment_date", balance < total ? "" : "");
        add_str(o, "salesperson_id", "");
        add_str(o, "salesperson_name", "");
        add_num(o, "shipping_charge", 0);
        add_num(o, "adjustment", 0);
        add_num(o, "write_off_amount", 0);
        break;
    case E_SALESORDERS:
        doc_common(cfg, o, r, ent, seq, status, false, "salesorder_number", "SO", created,
                   modified);
        add_date(o, "shipment_date", created + 3 * DAY);
        add_date(o, "delivery_date", created + 7 * DAY);
        add_str(o, "order_status", status);
        add_str(o, "invoiced_status", !strcmp(status, "invoiced") ? "invoiced" : "not_invoiced");
        add_str(o, "paid_status", "unpaid");
        add_str(o, "shipped_status", !strcmp(status, "invoiced") ? "fulfilled" : "pending");
        add_str(o, "sales_channel", "direct_sales");
        cJSON_AddBoolToObject(o, "is_drop_shipment", false);
        cJSON_AddBoolToObject(o, "is_backorder", false);
        cJSON_AddBoolToObject(o, "is_emailed", false);
        add_str(o, "color_code", "");
        add_str(o, "current_sub_status", status);
        break;
    case E_CREDITNOTES:
        doc_common(cfg, o, r, ent, seq, status, false, "creditnote_number", "CN", created,
                   modified);
        cJSON_AddBoolToObject(o, "is_emailed", false);
        break;
    case E_BILLS:
        doc_common(cfg, o, r, ent, seq, status, true, "bill_number", "BILL", created, modified);
        add_date(o, "due_date", created + 30 * DAY);
        cJSON_AddBoolToObject(o, "has_attachment", false);
        break;
    case E_PURCHASEORDERS:
        doc_common(cfg, o, r, ent, seq, status, true, "purchaseorder_number", "PO", created,
                   modified);
        add_date(o, "delivery_date", created + 10 * DAY);
        add_str(o, "order_status", status);
        add_str(o, "received_status", !strcmp(status, "received") ? "received" : "");
        add_str(o, "billed_status", !strcmp(status, "billed") ? "billed" : "");
        add_str(o, "reference_number", "");
        break;
    default: /* E_INVADJ */
        add_id(o, "inventory_adjustment_id", sim_id_for(ent, seq));
        add_date(o, "date", created);
        add_str(o, "reason", sim_rng_below(r, 2) ? "Stock count" : "Damaged goods");
        add_id(o, "reason_id", sim_id_for(E_INVADJ, 990000 + sim_rng_below(r, 2)));
        add_str(o, "description", "");
        add_fmt(o, "reference_number", "ADJ-%05llu", (unsigned long long)seq + 1);
        add_str(o, "adjustment_type", "quantity");
        add_str(o, "status", status);
        if (cfg->counts[E_LOCATIONS] > 0) {
            char name[64];
            uint64_t l = sim_rng_below(r, (uint64_t)cfg->counts[E_LOCATIONS]);
            location_identity(l, name, sizeof(name));
            add_id(o, "location_id", sim_id_for(E_LOCATIONS, l));
            add_str(o, "location_name", name);
        } else {
            add_str(o, "location_id", "");
            add_str(o, "location_name", "");
        }
        add_time(o, "created_time", created);
        add_time(o, "last_modified_time", modified);
        add_num(o, "total", (double)sim_rng_below(r, 50));
        cJSON_AddItemToObject(o, "line_items", cJSON_DetachItemFromObject(tmp, "line_items"));
        cJSON_Delete(tmp);
        return o;
    }
    add_num(o, "sub_total", money(total / 1.18));
    add_num(o, "tax_total", money(total - total / 1.18));
    add_num(o, "total", total);
    add_num(o, "balance", balance);
    cJSON_AddArrayToObject(o, "custom_fields");
    cJSON_AddItemToObject(o, "line_items", cJSON_DetachItemFromObject(tmp, "line_items"));
    cJSON_Delete(tmp);
    return o;
}

static cJSON *gen_payment(const struct sim_config *cfg, int ent, uint64_t seq, struct sim_rng *r,
                          int64_t created, int64_t modified)
{
    cJSON *o = cJSON_CreateObject();
    bool vendor = ent == E_VENDORPAYMENTS;
    struct contact_id c;
    pick_contact(cfg, r, vendor, &c);
    double amount = money(100 + sim_rng_unit(r) * 50000);
    add_id(o, "payment_id", sim_id_for(ent, seq));
    add_fmt(o, "payment_number", "%llu", (unsigned long long)seq + 1);
    if (vendor) {
        if (c.id)
            add_id(o, "vendor_id", c.id);
        else
            add_str(o, "vendor_id", "");
        add_str(o, "vendor_name", c.name);
        add_fmt(o, "bill_numbers", "BILL-%06llu", (unsigned long long)sim_rng_below(r, 999) + 1);
        add_str(o, "paid_through_account_id", "4815000000000000361");
        add_str(o, "paid_through_account_name", "Petty Cash");
    } else {
        if (c.id)
            add_id(o, "customer_id", c.id);
        else
            add_str(o, "customer_id", "");
        add_str(o, "customer_name", c.name);
        add_fmt(o, "invoice_numbers", "INV-%06llu", (unsigned long long)sim_rng_below(r, 999) + 1);
        add_str(o, "account_id", "4815000000000000358");
        add_str(o, "account_name", "Undeposited Funds");
    }
    add_str(o, "payment_mode", PICK(r, pay_modes));
    add_date(o, "date", created);
    add_str(o, "description", "");
    if (sim_rng_below(r, 2))
        add_fmt(o, "reference_number", "UTR%010llu", (unsigned long long)sim_rng_below(r, 1u << 30));
    else
        add_str(o, "reference_number", "");
    add_num(o, "amount", amount);
    add_num(o, "bcy_amount", amount);
    add_num(o, "unused_amount", 0);
    add_num(o, "bcy_unused_amount", 0);
    add_num(o, "exchange_rate", 1);
    add_str(o, "currency_code", "INR");
    cJSON_AddBoolToObject(o, "has_attachment", false);
    add_time(o, "created_time", created);
    add_time(o, "last_modified_time", modified);
    return o;
}

static cJSON *gen_misc(const struct sim_config *cfg, int ent, uint64_t seq, struct sim_rng *r,
                       int64_t created, int64_t modified)
{
    (void)cfg;
    cJSON *o = cJSON_CreateObject();
    add_id(o, sim_entities[ent].id_field, sim_id_for(ent, seq));
    if (ent == E_USERS) {
        const char *f = PICK(r, first_names), *l = PICK(r, last_names);
        add_id(o, "role_id", sim_id_for(E_USERS, 990000 + (seq == 0 ? 0 : 1)));
        add_fmt(o, "name", "%s %s", f, l);
        add_fmt(o, "email", "%s.%s@example.com", f, l);
        add_str(o, "user_role", seq == 0 ? "admin" : "staff");
        add_str(o, "user_type", "zoho");
        cJSON_AddBoolToObject(o, "is_current_user", seq == 0);
        add_str(o, "photo_url", "");
        add_str(o, "status", seq == 0 ? "active" : status_pick(ent, r));
        cJSON_AddBoolToObject(o, "is_accountant", false);
        cJSON_AddBoolToObject(o, "is_associated_for_approval", false);
    } else if (ent == E_LOCATIONS) {
        char name[64];
        location_identity(seq, name, sizeof(name));
        add_str(o, "location_name", name);
        add_str(o, "type", "general");
        cJSON_AddBoolToObject(o, "is_primary", seq == 0);
        add_str(o, "status", "active");
        cJSON_AddBoolToObject(o, "is_all_users_selected", true);
        add_str(o, "parent_location_id", "");
        add_fmt(o, "email", "store%llu@example.com", (unsigned long long)seq + 1);
        add_fmt(o, "phone", "+91 22 %04llu 0000", (unsigned long long)sim_rng_below(r, 10000));
        cJSON *a = cJSON_AddObjectToObject(o, "address");
        add_str(a, "attention", "");
        add_fmt(a, "street_address1", "%llu Market Road", (unsigned long long)sim_rng_below(r, 400) + 1);
        add_str(a, "street_address2", "");
        add_str(a, "city", PICK(r, cities));
        add_str(a, "state", "Maharashtra");
        add_fmt(a, "zip", "4000%02llu", (unsigned long long)sim_rng_below(r, 100));
        add_str(a, "country", "India");
    } else { /* E_PRICEBOOKS */
        add_fmt(o, "name", "%s Price List", PICK(r, adjectives));
        add_str(o, "description", "");
        add_str(o, "currency_id", "4815000000000000099");
        add_str(o, "currency_code", "INR");
        add_num(o, "decimal_place", 2);
        cJSON_AddBoolToObject(o, "is_default", false);
        cJSON_AddBoolToObject(o, "is_increase", sim_rng_below(r, 2) == 0);
        add_num(o, "percentage", (double)(5 * (1 + sim_rng_below(r, 6))));
        add_str(o, "pricebook_type", "fixed_percentage");
        add_str(o, "rounding_type", "no_rounding");
        add_str(o, "sales_or_purchase_type", "sales");
        add_str(o, "status", status_pick(ent, r));
    }
    add_time(o, "created_time", created);
    add_time(o, "last_modified_time", modified);
    return o;
}

cJSON *sim_generate(const struct sim_config *cfg, int ent, uint64_t seq, int64_t now)
{
    struct sim_rng r = sim_rng_for(cfg->seed, ent, seq);
    int64_t created, modified;
    history_times(cfg, ent, &r, now, &created, &modified);
    switch (ent) {
    case E_ITEMS:
        return gen_item(cfg, seq, &r, created, modified);
    case E_CONTACTS:
        return gen_contact(cfg, seq, &r, created, modified);
    case E_SALESORDERS:
    case E_INVOICES:
    case E_CREDITNOTES:
    case E_BILLS:
    case E_INVADJ:
    case E_PURCHASEORDERS:
        return gen_doc(cfg, ent, seq, &r, created, modified);
    case E_CUSTOMERPAYMENTS:
    case E_VENDORPAYMENTS:
        return gen_payment(cfg, ent, seq, &r, created, modified);
    default:
        return gen_misc(cfg, ent, seq, &r, created, modified);
    }
}

static void set_num(cJSON *o, const char *k, double v)
{
    if (cJSON_HasObjectItem(o, k))
        cJSON_ReplaceItemInObjectCaseSensitive(o, k, cJSON_CreateNumber(v));
    else
        cJSON_AddNumberToObject(o, k, v);
}

static void set_str(cJSON *o, const char *k, const char *v)
{
    if (cJSON_HasObjectItem(o, k))
        cJSON_ReplaceItemInObjectCaseSensitive(o, k, cJSON_CreateString(v));
    else
        cJSON_AddStringToObject(o, k, v);
}

void sim_generate_change(const struct sim_config *cfg, int ent, cJSON *rec, struct sim_rng *r)
{
    (void)cfg;
    if (ent == E_ITEMS) {
        cJSON *locs = cJSON_GetObjectItemCaseSensitive(rec, "locations");
        const char *p = "location_";
        if (!locs) {
            locs = cJSON_GetObjectItemCaseSensitive(rec, "warehouses");
            p = "warehouse_";
        }
        int n = cJSON_GetArraySize(locs);
        if (n > 0 && cJSON_HasObjectItem(rec, "stock_on_hand") && sim_rng_below(r, 5) != 0) {
            cJSON *l = cJSON_GetArrayItem(locs, (int)sim_rng_below(r, (uint64_t)n));
            char k1[64], k2[64], k3[64];
            snprintf(k1, sizeof(k1), "%sstock_on_hand", p);
            snprintf(k2, sizeof(k2), "%savailable_stock", p);
            snprintf(k3, sizeof(k3), "%sactual_available_stock", p);
            double on = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k1));
            double av = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k2));
            double committed = on - av;
            double non = (double)sim_rng_below(r, 400);
            if (committed > non)
                committed = non;
            set_num(l, k1, non);
            set_num(l, k2, non - committed);
            set_num(l, k3, non - committed);
            sim_item_totals(rec);
        } else {
            double rate = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "rate"));
            if (isnan(rate) || rate <= 0)
                rate = 100;
            set_num(rec, "rate", money(rate * (0.9 + 0.2 * sim_rng_unit(r))));
        }
        return;
    }
    cJSON *bal = cJSON_GetObjectItemCaseSensitive(rec, "balance");
    if (cJSON_IsNumber(bal) && bal->valuedouble > 0) {
        double nb = sim_rng_below(r, 2) ? 0 : money(bal->valuedouble * sim_rng_unit(r));
        set_num(rec, "balance", nb);
        const char *const *st = sim_entities[ent].statuses;
        for (int i = 0; st && st[i]; i++)
            if (strcmp(st[i], nb == 0 ? "paid" : "partially_paid") == 0)
                set_str(rec, "status", st[i]);
        return;
    }
    if (cJSON_HasObjectItem(rec, "phone")) {
        char buf[32];
        snprintf(buf, sizeof(buf), "+91 22 %04llu %04llu",
                 (unsigned long long)sim_rng_below(r, 10000),
                 (unsigned long long)sim_rng_below(r, 10000));
        set_str(rec, "phone", buf);
        return;
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "REF-%05llu", (unsigned long long)sim_rng_below(r, 99999));
    set_str(rec, "reference_number", buf);
}
