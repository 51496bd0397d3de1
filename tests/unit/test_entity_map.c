/*
 * test_entity_map.c: the descriptor table is consistent, and Zoho records of
 * the real shape map to the right column values (table-driven), tolerant of
 * "" and numbers as strings, strict about what would corrupt data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tds/entity.h"

/* A tracked Inventory item as a list page carries it (abridged: the real
 * one has ~70 fields; the mapping must ignore the ones it does not type). */
static const char *const tracked_item =
    "{\"item_id\":\"4815000000044208\",\"name\":\"Bolt M8 \\u00d7 40\",\"item_name\":\"Bolt M8\","
    "\"sku\":\"BLT-M8-40\",\"status\":\"active\",\"rate\":12.5,\"item_type\":\"inventory\","
    "\"product_type\":\"goods\",\"track_inventory\":true,\"unit\":\"pcs\",\"brand\":\"\","
    "\"stock_on_hand\":1250.000000,\"available_stock\":\"1200.500000\","
    "\"actual_available_stock\":1199,\"image_document_id\":\"\",\"image_name\":\"\","
    "\"created_time\":\"2013-08-05T12:06:10+0530\","
    "\"last_modified_time\":\"2025-11-05T09:15:00+0530\",\"tags\":[]}";

/* An untracked service item: no stock fields at all. */
static const char *const service_item =
    "{\"item_id\":\"4815000000044209\",\"name\":\"Installation\",\"status\":\"inactive\","
    "\"rate\":\"75.00\",\"item_type\":\"sales\",\"product_type\":\"service\","
    "\"track_inventory\":false,\"last_modified_time\":\"2025-11-05T09:15:00+0530\"}";

struct expect {
    const char *column;
    const char *value; /* NULL: SQL NULL */
};

static const char *value_of(const struct entity_record *r, const char *column)
{
    size_t n = entity_ncolumns(r->desc);
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->desc->columns[i].column, column) == 0)
            return r->values[i];
    fail_msg("no column %s", column);
    return NULL;
}

static void check_record(const char *entity, const char *json, const char *id,
                         const struct expect *ex)
{
    cJSON *rec = cJSON_Parse(json);
    assert_non_null(rec);
    struct entity_record r;
    char *err = NULL;
    int rc = entity_map_record(entity_find(entity), rec, &r, &err);
    if (rc != 0)
        fail_msg("map failed: %s", err);
    assert_string_equal(r.id, id);
    for (; ex->column; ex++) {
        const char *got = value_of(&r, ex->column);
        if (ex->value == NULL) {
            if (got != NULL)
                fail_msg("%s: expected NULL, got %s", ex->column, got);
        } else {
            if (got == NULL)
                fail_msg("%s: expected %s, got NULL", ex->column, ex->value);
            assert_string_equal(got, ex->value);
        }
    }
    assert_non_null(r.raw);
    cJSON *back = cJSON_Parse(r.raw);
    assert_non_null(back);
    assert_true(cJSON_Compare(back, rec, 1));
    cJSON_Delete(back);
    entity_record_free(&r);
    cJSON_Delete(rec);
}

static void test_tracked_item(void **state)
{
    (void)state;
    static const struct expect ex[] = {
        {"name", "Bolt M8 \xc3\x97 40"},
        {"sku", "BLT-M8-40"},
        {"rate", "12.5"},
        {"track_inventory", "true"},
        {"stock_on_hand", "1250"},
        {"available_stock", "1200.500000"},
        {"actual_available_stock", "1199"},
        {"image_document_id", NULL},
        {"last_modified_time", "2025-11-05T09:15:00+0530"},
        {NULL, NULL},
    };
    check_record("items", tracked_item, "4815000000044208", ex);
}

static void test_untracked_item(void **state)
{
    (void)state;
    static const struct expect ex[] = {
        {"rate", "75.00"},
        {"track_inventory", "false"},
        {"stock_on_hand", NULL},
        {"available_stock", NULL},
        {"sku", NULL},
        {NULL, NULL},
    };
    check_record("item", service_item, "4815000000044209", ex);
}

static void test_other_entities(void **state)
{
    (void)state;
    static const struct expect inv[] = {
        {"invoice_number", "INV-000123"},
        {"date", "2025-11-01"},
        {"due_date", NULL},
        {"total", "1234.56"},
        {"balance", "0"},
        {NULL, NULL},
    };
    check_record("invoices",
                 "{\"invoice_id\":\"982000000567001\",\"invoice_number\":\"INV-000123\","
                 "\"date\":\"2025-11-01\",\"due_date\":\"\",\"total\":1234.56,\"balance\":0,"
                 "\"last_modified_time\":\"2025-11-02T10:00:00+0530\"}",
                 "982000000567001", inv);
    static const struct expect loc[] = {
        {"location_name", "Main warehouse"},
        {"is_primary", "true"},
        {NULL, NULL},
    };
    check_record("locations",
                 "{\"location_id\":\"460000000038080\",\"location_name\":\"Main warehouse\","
                 "\"is_primary\":\"true\"}",
                 "460000000038080", loc);
}

static const struct {
    const char *entity;
    const char *json;
    const char *error;
} bad[] = {
    {"items", "{\"name\":\"x\"}", "items record has no item_id"},
    {"items", "{\"item_id\":\"\"}", "items record has no item_id"},
    {"items", "{\"item_id\":\"12a\"}", "items record: item_id \"12a\" is not a Zoho id (digits)"},
    {"items", "{\"item_id\":\"1\",\"rate\":\"abc\"}",
     "items record 1: field rate: \"abc\" is not a number"},
    {"items", "{\"item_id\":\"1\",\"stock_on_hand\":[1]}",
     "items record 1: field stock_on_hand: [1] is not a number"},
    {"items", "{\"item_id\":\"1\",\"track_inventory\":\"yes\"}",
     "items record 1: field track_inventory: \"yes\" is not a boolean"},
    {"invoices", "{\"invoice_id\":\"5\",\"date\":\"05/11/2025\"}",
     "invoices record 5: field date: \"05/11/2025\" is not a date like 2013-08-05"},
    {"items", "[1,2]", "items record is not a JSON object"},
};

static void test_bad_records(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *rec = cJSON_Parse(bad[i].json);
        assert_non_null(rec);
        struct entity_record r;
        char *err = NULL;
        assert_int_equal(entity_map_record(entity_find(bad[i].entity), rec, &r, &err), -1);
        assert_string_equal(err, bad[i].error);
        free(err);
        entity_record_free(&r);
        cJSON_Delete(rec);
    }
}

/* Times as Zoho writes them (issue 17 point 4): a date-only value is
 * midnight in the record's own offset; one that is no time keeps the
 * record, NULL. */
static void test_zoho_times(void **state)
{
    (void)state;
    static const struct {
        const char *json, *created, *lmt;
    } rows[] = {
        {"{\"item_id\":\"1\",\"created_time\":\"2013-01-24\","
         "\"last_modified_time\":\"2013-01-25T10:00:00+0530\"}",
         "2013-01-24T00:00:00+0530", "2013-01-25T10:00:00+0530"},
        {"{\"item_id\":\"1\",\"created_time\":\"2013-01-24\"}", "2013-01-24T00:00:00", NULL},
        {"{\"item_id\":\"1\",\"last_modified_time\":\"yesterday\"}", NULL, NULL},
        {"{\"item_id\":\"1\",\"created_time\":\"24/01/2013 10:15 AM\","
         "\"last_modified_time\":\"2013-01-24\"}",
         NULL, "2013-01-24T00:00:00"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cJSON *rec = cJSON_Parse(rows[i].json);
        struct entity_record r;
        char *err = NULL;
        assert_int_equal(entity_map_record(entity_find("items"), rec, &r, &err), 0);
        const char *c = value_of(&r, "created_time"), *l = value_of(&r, "last_modified_time");
        if (rows[i].created)
            assert_string_equal(c, rows[i].created);
        else
            assert_null(c);
        if (rows[i].lmt) {
            assert_string_equal(l, rows[i].lmt);
            assert_string_equal(r.last_modified_time, rows[i].lmt);
        } else {
            assert_null(l);
            assert_null(r.last_modified_time);
        }
        entity_record_free(&r);
        cJSON_Delete(rec);
    }
}

/* Numbers a double cannot hold (issue 17 point 5), through entity_json_parse. */
static void test_exact_numbers(void **state)
{
    (void)state;
    const char *json = "{\"item_id\": 4815000000000044208123, \"rate\": 12345678901234567.89,"
                       " \"stock_on_hand\": 9007199254740993, \"available_stock\": 12.5,"
                       " \"name\": 4815000000000044208}";
    cJSON *rec = entity_json_parse(json);
    assert_non_null(rec);
    struct entity_record r;
    char *err = NULL;
    assert_int_equal(entity_map_record(entity_find("items"), rec, &r, &err), 0);
    assert_string_equal(r.id, "4815000000000044208123");
    assert_string_equal(value_of(&r, "rate"), "12345678901234567.89");
    assert_string_equal(value_of(&r, "stock_on_hand"), "9007199254740993");
    assert_string_equal(value_of(&r, "available_stock"), "12.5");
    assert_string_equal(value_of(&r, "name"), "4815000000000044208");
    assert_non_null(strstr(r.raw, "\"rate\":12345678901234567.89"));
    assert_non_null(strstr(r.raw, "\"item_id\":4815000000000044208123"));
    entity_record_free(&r);
    cJSON_Delete(rec);
    /* a bad document is still refused */
    assert_null(entity_json_parse("{\"a\": 12345678901234567890"));
}

static void test_descriptor_table(void **state)
{
    (void)state;
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    assert_int_equal(n, 13);
    for (size_t i = 0; i < n; i++) {
        const struct entity_desc *d = &all[i];
        assert_ptr_equal(entity_find(d->name), d);
        assert_ptr_equal(entity_find(d->singular), d);
        assert_true(d->list_path[0] == '/');
        assert_true(strncmp(d->table, "zoho.", 5) == 0);
        assert_string_equal(d->table + 5, d->name);
        assert_true(entity_ncolumns(d) > 0);
        /* Every table keeps last_modified_time for the upsert guard. */
        bool lmt = false;
        for (size_t c = 0; c < entity_ncolumns(d); c++)
            lmt |= strcmp(d->columns[c].column, "last_modified_time") == 0;
        assert_true(lmt);
    }
    assert_null(entity_find("widgets"));
    assert_null(entity_find(NULL));
    assert_true(entity_find("items")->changed_since);
    assert_false(entity_find("contacts")->changed_since);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_table),
        cmocka_unit_test(test_tracked_item),
        cmocka_unit_test(test_untracked_item),
        cmocka_unit_test(test_other_entities),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_zoho_times),
        cmocka_unit_test(test_exact_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
