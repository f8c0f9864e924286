# The {{ params.label }} report: the count task's rows arrive through XCom.
echo "{{ params.label }} {{ ds }}: {{ ti.xcom_pull(task_ids='count') }}"
