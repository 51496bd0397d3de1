/*
 * entity.c: the entity descriptor table.  Every Zoho entity tds syncs is one
 * row here: which API lists it, where, its id field, whether the list can
 * filter by last_modified_time, its table and the columns worth typing.
 * Full sync, incremental sync, webhook intake and reconciliation all walk
 * this table; adding an entity is adding a row (and its table in a
 * migration), not a file.
 */
#include <string.h>

#include "tds/entity.h"

#define T(c) {c, c, COL_TEXT}
#define N(c) {c, c, COL_NUMERIC}
#define B(c) {c, c, COL_BOOL}
#define D(c) {c, c, COL_DATE}
#define TS(c) {c, c, COL_TIMESTAMPTZ}
#define TIMES TS("created_time"), TS("last_modified_time")

static const struct entity_desc entities[] = {
    {"items", "item", ZOHO_INVENTORY, "/items", "item_id", true, "zoho.items",
     {T("name"), T("sku"), T("status"), N("rate"), T("item_type"), T("product_type"), T("unit"),
      B("track_inventory"), N("stock_on_hand"), N("available_stock"),
      N("actual_available_stock"), N("available_for_sale_stock"),
      N("actual_available_for_sale_stock"), N("committed_stock"), N("actual_committed_stock"),
      T("image_document_id"), T("image_name"), TIMES}},
    {"contacts", "contact", ZOHO_BOOKS, "/contacts", "contact_id", false, "zoho.contacts",
     {T("contact_name"), T("company_name"), T("contact_type"), T("status"), T("email"),
      T("phone"), T("currency_code"), N("outstanding_receivable_amount"),
      N("outstanding_payable_amount"), TIMES}},
    {"salesorders", "salesorder", ZOHO_BOOKS, "/salesorders", "salesorder_id", true,
     "zoho.salesorders",
     {T("salesorder_number"), T("customer_id"), T("customer_name"), T("status"), D("date"),
      D("shipment_date"), N("total"), T("currency_code"), TIMES}},
    {"invoices", "invoice", ZOHO_BOOKS, "/invoices", "invoice_id", true, "zoho.invoices",
     {T("invoice_number"), T("customer_id"), T("customer_name"), T("status"), D("date"),
      D("due_date"), N("total"), N("balance"), T("currency_code"), TIMES}},
    {"customerpayments", "payment", ZOHO_BOOKS, "/customerpayments", "payment_id", false,
     "zoho.customerpayments",
     {T("payment_number"), T("customer_id"), T("customer_name"), T("payment_mode"), D("date"),
      N("amount"), N("unused_amount"), T("currency_code"), TIMES}},
    {"creditnotes", "creditnote", ZOHO_BOOKS, "/creditnotes", "creditnote_id", false,
     "zoho.creditnotes",
     {T("creditnote_number"), T("customer_id"), T("customer_name"), T("status"), D("date"),
      N("total"), N("balance"), T("currency_code"), TIMES}},
    {"bills", "bill", ZOHO_BOOKS, "/bills", "bill_id", true, "zoho.bills",
     {T("bill_number"), T("vendor_id"), T("vendor_name"), T("status"), D("date"),
      D("due_date"), N("total"), N("balance"), T("currency_code"), TIMES}},
    {"vendorpayments", "vendorpayment", ZOHO_BOOKS, "/vendorpayments", "payment_id", true,
     "zoho.vendorpayments",
     {T("payment_number"), T("vendor_id"), T("vendor_name"), T("payment_mode"), D("date"),
      N("amount"), N("balance"), T("currency_code"), TIMES}},
    {"users", "user", ZOHO_BOOKS, "/users", "user_id", false, "zoho.users",
     {T("name"), T("email"), T("role_id"), T("status"), TIMES}},
    {"locations", "location", ZOHO_INVENTORY, "/locations", "location_id", false,
     "zoho.locations",
     {T("location_name"), T("type"), T("status"), B("is_primary"), TIMES}},
    {"inventoryadjustments", "inventory_adjustment", ZOHO_INVENTORY, "/inventoryadjustments",
     "inventory_adjustment_id", false, "zoho.inventoryadjustments",
     {T("reference_number"), T("adjustment_type"), T("reason"), T("status"), D("date"),
      N("total"), TIMES}},
    {"pricebooks", "pricebook", ZOHO_INVENTORY, "/pricebooks", "pricebook_id", false,
     "zoho.pricebooks",
     {T("name"), T("pricebook_type"), T("currency_code"), T("status"), TIMES}},
    /* incoming stock; Books documents no changed-since filter on them */
    {"purchaseorders", "purchaseorder", ZOHO_BOOKS, "/purchaseorders", "purchaseorder_id", false,
     "zoho.purchaseorders",
     {T("purchaseorder_number"), T("vendor_id"), T("vendor_name"), T("status"), D("date"),
      D("delivery_date"), N("total"), T("currency_code"), TIMES}},
};

const struct entity_desc *entity_all(size_t *n)
{
    *n = TDS_ARRAY_LEN(entities);
    return entities;
}

const struct entity_desc *entity_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < TDS_ARRAY_LEN(entities); i++)
        if (strcmp(entities[i].name, name) == 0 || strcmp(entities[i].singular, name) == 0)
            return &entities[i];
    /* Common alternative spellings of the two payment kinds. */
    if (strcmp(name, "customerpayment") == 0)
        return entity_find("customerpayments");
    return NULL;
}

const char *entity_all_filter(const struct entity_desc *d)
{
    /* The lists Zoho documents Status.All for; the others (payments filter
     * by mode; locations, adjustments, price books) are sent no filter. */
    static const char *const with_status[] = {"items",       "contacts", "salesorders",
                                              "invoices",    "creditnotes", "bills",
                                              "users",       "purchaseorders"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(with_status); i++)
        if (str_eq(d->name, with_status[i]))
            return "Status.All";
    return NULL;
}

size_t entity_ncolumns(const struct entity_desc *d)
{
    size_t n = 0;
    while (n < ENTITY_MAX_COLUMNS && d->columns[n].column != NULL)
        n++;
    return n;
}
